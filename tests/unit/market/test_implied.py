from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tickfleet.market.blackscholes import price
from tickfleet.market.implied import implied_total_vol, otm_price

pytestmark = pytest.mark.filterwarnings("error")

LOW, HIGH = 1e-6, 10.0


def solve(beta: np.ndarray, x: np.ndarray, is_call: np.ndarray | bool) -> np.ndarray:
    beta, x, call = np.broadcast_arrays(
        np.asarray(beta, dtype=float), np.asarray(x, dtype=float), np.asarray(is_call)
    )
    return implied_total_vol(
        beta.ravel(),
        x.ravel(),
        call.ravel(),
        np.full(beta.size, LOW),
        np.full(beta.size, HIGH),
        max_iter=50,
        tolerance=1e-6,
    )


def normalised_grid() -> tuple[np.ndarray, np.ndarray]:
    """Log-moneyness from deep out of the money to the money, total vol 0.001 to 3."""
    combos = list(itertools.product(np.linspace(-3.0, 0.0, 31), np.geomspace(1e-3, 3.0, 30)))
    x, total = (np.array(column) for column in zip(*combos, strict=True))
    return x, total


def test_otm_price_is_the_normalised_black_scholes_price() -> None:
    spot, rate, years = 24_000.0, 0.065, 0.25
    strikes = np.array([24_500.0, 25_000.0, 30_000.0, 24_000.0, 18_000.0])
    forward = spot * np.exp(rate * years)  # 24,393: calls above it are out of the money
    is_call = strikes >= forward
    vol = 0.3
    x = np.log(forward / strikes)
    normalised = otm_price(-np.abs(x), np.full(x.shape, vol * np.sqrt(years)))
    undiscounted = price(spot, strikes, years, vol, is_call, rate) * np.exp(rate * years)
    np.testing.assert_allclose(normalised, undiscounted / np.sqrt(forward * strikes), rtol=1e-12)


def test_out_of_the_money_calls_and_puts_round_trip() -> None:
    x, total = normalised_grid()
    beta = otm_price(x, total)
    representable = beta > 1e-200  # below, the price is mostly the normal tail's cut-off
    assert representable.sum() > len(x) // 2
    for moneyness, is_call in ((x, True), (-x, False)):
        solved = solve(beta, moneyness, is_call)
        np.testing.assert_allclose(solved[representable], total[representable], rtol=1e-11)


def test_in_the_money_prices_solve_as_their_counterpart() -> None:
    x, total = normalised_grid()
    otm = otm_price(x, total)
    intrinsic = 2.0 * np.sinh(0.5 * np.abs(x))
    beta = intrinsic + otm
    # Where the time value keeps at least six of its digits next to the intrinsic value,
    # the volatility keeps at least as many (measured: 6e-9 apart at worst).
    resolved = otm > 1e-10 * beta
    assert resolved.sum() > len(x) // 3
    for moneyness, is_call in ((-x, True), (x, False)):
        solved = solve(beta, moneyness, is_call)
        np.testing.assert_allclose(solved[resolved], total[resolved], rtol=1e-6)
        counterpart = solve(otm, moneyness, not is_call)
        np.testing.assert_allclose(solved[resolved], counterpart[resolved], rtol=1e-6)


def test_prices_outside_the_attainable_range_have_no_solution() -> None:
    x = np.array([-0.2, 0.2, 0.2, -0.2, 0.0, 0.0, np.nan, -0.1, -0.1])
    beta = np.array([0.0, 2 * np.sinh(0.1), 2 * np.sinh(0.1) - 1e-9, np.exp(-0.1), 1.0, -1.0])
    beta = np.append(beta, [0.1, np.nan, np.inf])
    is_call = np.array([True, True, True, True, True, True, True, True, True])
    # zero; exactly intrinsic; below intrinsic; the upper bound e^{x/2}; above; negative;
    # a NaN moneyness; a NaN price; an infinite price
    assert np.all(np.isnan(solve(beta, x, is_call)))


def test_solutions_outside_the_searched_range_are_nan() -> None:
    x = np.array([-0.1, -0.1, 0.0, -1e-6, -1e-6])
    total = np.array([1e-7, 20.0, 1e-7, 1e-7, 2e-6])
    beta = otm_price(x, total)
    assert np.all(beta[2:] > 0)  # near the money, a price below the range is not zero
    np.testing.assert_array_equal(np.isnan(solve(beta, x, True)), [True] * 4 + [False])


@settings(max_examples=300, deadline=None)
@given(
    x=st.floats(-2.0, 2.0),
    total=st.floats(1e-3, 3.0),
    is_call=st.booleans(),
)
def test_any_resolvable_price_recovers_its_volatility(
    x: float, total: float, is_call: bool
) -> None:
    otm = float(otm_price(np.array([-abs(x)]), np.array([total]))[0])
    in_the_money = x > 0 if is_call else x < 0
    beta = otm + (2.0 * np.sinh(0.5 * abs(x)) if in_the_money else 0.0)
    assume(otm > 1e-200 and otm > 1e-10 * beta)
    solved = solve(np.array([beta]), np.array([x]), is_call)[0]
    assert solved == pytest.approx(total, rel=1e-6 if in_the_money else 1e-11)
