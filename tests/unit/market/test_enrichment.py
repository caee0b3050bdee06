from __future__ import annotations

import contextlib
import itertools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from vollib.black_scholes.greeks import analytical  # type: ignore[import-untyped]
from vollib.black_scholes.implied_volatility import (  # type: ignore[import-untyped]
    implied_volatility,
)
from vollib.lets_be_rational import (  # type: ignore[import-untyped]
    AboveMaximumException,
    BelowIntrinsicException,
)

from tickfleet.market.blackscholes import DAYS_PER_YEAR, IV_HIGH, IV_LOW, MIN_YEARS, greeks, price
from tickfleet.market.enrichment import Enrichment, enrich

pytestmark = pytest.mark.filterwarnings("error")

SPOT = 24_000.0
RATE = 0.065
TICK = 0.05
MINUTE = 1.0 / (DAYS_PER_YEAR * 24 * 60)
# decimals published, as MockOptionBook publishes them
DECIMALS = {"iv": 6, "delta": 6, "gamma": 8, "theta": 4, "vega": 4}


def on_the_tick(prices: np.ndarray) -> np.ndarray:
    return np.maximum(np.rint(prices / TICK), 1.0) * TICK


def exchange_frame() -> tuple[np.ndarray, ...]:
    """Model prices on Kite's 0.05 grid, from the last minute to four months, 3-200 % vol."""
    combos = list(
        itertools.product(
            np.arange(12_000.0, 36_001.0, 250.0),
            np.array([1, 5, 30, 375, 1440, 7 * 1440, 30 * 1440, 120 * 1440]) * MINUTE,
            (0.03, 0.1, 0.2, 0.5, 1.2, 2.0),
            (True, False),
        )
    )
    strikes, years, vols, is_call = (np.array(column) for column in zip(*combos, strict=True))
    return on_the_tick(price(SPOT, strikes, years, vols, is_call, RATE)), strikes, years, is_call


def vollib(
    prices: np.ndarray, strikes: np.ndarray, years: np.ndarray, is_call: np.ndarray
) -> dict[str, np.ndarray]:
    """IV and greeks one option at a time with Let's Be Rational; NaN where it finds no IV."""
    result = {name: np.full(len(prices), np.nan) for name in DECIMALS}
    rows = zip(prices.tolist(), strikes.tolist(), years.tolist(), is_call.tolist(), strict=True)
    for i, (p, k, t, call) in enumerate(rows):
        flag = "c" if call else "p"
        with contextlib.suppress(BelowIntrinsicException, AboveMaximumException):
            iv = implied_volatility(p, SPOT, k, t, RATE, flag)
            result["iv"][i] = iv
            for name in ("delta", "gamma", "theta", "vega"):
                result[name][i] = getattr(analytical, name)(flag, SPOT, k, t, RATE, iv)
    return result


def assert_published_consistently(e: Enrichment) -> None:
    """Unsolved options are null in every field; solved ones are finite in every field."""
    for values in (e.iv, e.delta, e.gamma, e.theta, e.vega):
        assert np.all(np.isnan(values[e.unsolved]))
        assert np.all(np.isfinite(values[~e.unsolved]))


def test_agrees_with_lets_be_rational_on_exchange_prices() -> None:
    prices, strikes, years, is_call = exchange_frame()
    e = enrich(prices, SPOT, strikes, years, is_call, RATE)
    reference = vollib(prices, strikes, years, is_call)
    assert_published_consistently(e)
    # The same options are solved, except where vollib's IV is beyond IV_HIGH.
    ref_iv = reference["iv"]
    at_a_bound = np.isclose(ref_iv, IV_HIGH, rtol=1e-3) | np.isclose(ref_iv, IV_LOW, rtol=1e-3)
    in_range = (ref_iv > IV_LOW) & (ref_iv < IV_HIGH)
    np.testing.assert_array_equal(~e.unsolved[~at_a_bound], in_range[~at_a_bound])
    assert e.unsolved_count > len(prices) // 10  # the grid is hostile on purpose
    assert in_range.sum() > len(prices) // 2
    # Apart by at most half a unit of the last published decimal: measured, the values
    # before rounding are within 6e-9 (IV) and 1e-9 relative (greeks) of vollib's.
    solved = ~e.unsolved
    for name, decimals in DECIMALS.items():
        ours, theirs = getattr(e, name)[solved], reference[name][solved]
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=0.5 * 10.0**-decimals)


def test_units_and_rounding_are_those_of_the_simulated_market() -> None:
    strikes = np.array([22_000.0, 23_500.0, 24_000.0, 24_500.0, 26_000.0])
    years, vol = 14 / DAYS_PER_YEAR, 0.2
    for is_call in (True, False):
        model = greeks(SPOT, strikes, years, vol, is_call, RATE)
        e = enrich(model.price, SPOT, strikes, years, is_call, RATE)
        assert not e.unsolved.any()
        np.testing.assert_array_equal(e.iv, np.full(len(strikes), vol))
        for name in ("delta", "gamma", "theta", "vega"):
            expected = np.round(getattr(model, name), DECIMALS[name])
            np.testing.assert_allclose(getattr(e, name), expected, rtol=0, atol=1e-12)


def test_deep_in_the_money_at_the_intrinsic_value() -> None:
    years = 30 / DAYS_PER_YEAR
    discount = math.exp(-RATE * years)
    call_bound, put_bound = SPOT - 12_000.0 * discount, 36_000.0 * discount - SPOT
    e = enrich(
        [12_000.0, math.ceil(call_bound / TICK) * TICK, 12_000.0, put_bound - TICK],
        SPOT,
        [12_000.0, 12_000.0, 36_000.0, 36_000.0],
        years,
        [True, True, False, False],
        RATE,
    )
    # S - K is below the call's discounted bound S - K e^{-rT}: no volatility gives it.
    # The put's K - S is above its bound K e^{-rT} - S; a tick below the bound is not.
    np.testing.assert_array_equal(e.unsolved, [True, False, False, True])
    reference = [
        implied_volatility(math.ceil(call_bound / TICK) * TICK, SPOT, 12_000, years, RATE, "c"),
        implied_volatility(12_000.0, SPOT, 36_000, years, RATE, "p"),
    ]
    np.testing.assert_allclose(e.iv[1:3], reference, rtol=0, atol=5e-7)


def test_deep_out_of_the_money_at_one_tick() -> None:
    e = enrich(
        TICK,
        SPOT,
        [30_000.0, 18_000.0, 26_000.0],
        [30 / 365, 30 / 365, 5 * MINUTE],
        [True, False, True],
        RATE,
    )
    reference = [
        implied_volatility(TICK, SPOT, 30_000, 30 / 365, RATE, "c"),
        implied_volatility(TICK, SPOT, 18_000, 30 / 365, RATE, "p"),
        implied_volatility(TICK, SPOT, 26_000, 5 * MINUTE, RATE, "c"),
    ]
    np.testing.assert_array_equal(e.unsolved, [False, False, True])
    np.testing.assert_allclose(e.iv[:2], reference[:2], rtol=0, atol=5e-7)
    assert reference[2] > IV_HIGH  # five minutes from expiry, 0.05 takes an absurd IV
    assert e.unsolved_count == 1


def test_the_last_minute_before_expiry() -> None:
    strikes = np.array([23_950.0, 24_000.0, 24_000.0, 24_050.0])
    is_call = np.array([False, True, False, True])  # out of the money, or at it
    one_minute = on_the_tick(price(SPOT, strikes, MINUTE, 0.15, is_call, RATE))
    e = enrich(one_minute, SPOT, strikes, MINUTE, is_call, RATE)
    reference = vollib(one_minute, strikes, np.full(4, MINUTE), is_call)["iv"]
    assert not e.unsolved.any()
    np.testing.assert_allclose(e.iv, reference, rtol=0, atol=5e-7)
    # Less than a minute left, expired, or no time at all: pricing floors time at a minute.
    for years in (0.5 * MINUTE, 0.0, -MINUTE, np.nan, -np.inf):
        assert enrich(one_minute, SPOT, strikes, years, is_call, RATE).unsolved.all()


def test_prices_no_volatility_reaches_are_unsolved() -> None:
    years = 7 / DAYS_PER_YEAR
    strikes = np.array([23_000.0, 23_000.0, 25_000.0, 25_000.0])
    # below a call's intrinsic value; above the spot (a call's upper bound);
    # below a put's intrinsic value; above the put's discounted strike
    prices = np.array([900.0, SPOT + TICK, 900.0, 25_000.0])
    e = enrich(prices, SPOT, strikes, years, [True, True, False, False], RATE)
    assert e.unsolved.all()
    assert_published_consistently(e)


@pytest.mark.parametrize("spot", [0.0, -24_000.0, np.nan, np.inf, -np.inf])
def test_no_usable_spot_leaves_the_frame_unsolved(spot: float) -> None:
    prices, strikes, years, is_call = exchange_frame()
    e = enrich(prices, spot, strikes, years, is_call, RATE)
    assert e.unsolved.all()
    assert e.unsolved_count == len(prices)
    assert_published_consistently(e)


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan, np.inf])
def test_unusable_prices_and_strikes_are_unsolved_alone(bad: float) -> None:
    good = float(on_the_tick(price(SPOT, 24_000.0, 7 / DAYS_PER_YEAR, 0.15, True, RATE)))
    e = enrich([bad, good, good], SPOT, [24_000.0, bad, 24_000.0], 7 / DAYS_PER_YEAR, True, RATE)
    np.testing.assert_array_equal(e.unsolved, [True, True, False])
    assert_published_consistently(e)


def test_a_frame_keeps_its_shape() -> None:
    strikes = np.array([[23_500.0, 24_000.0], [24_500.0, 25_000.0]])
    prices = on_the_tick(price(SPOT, strikes, 0.05, 0.15, False, RATE))
    e = enrich(prices, SPOT, strikes, 0.05, False, RATE)
    for values in (e.iv, e.delta, e.gamma, e.theta, e.vega, e.unsolved):
        assert values.shape == (2, 2)
    assert e.unsolved_count == 0


@settings(max_examples=300, deadline=None)
@given(
    vol=st.floats(0.03, 2.0),
    strike=st.floats(12_000.0, 36_000.0),
    minutes=st.floats(1.0, 120 * 1440.0),
    is_call=st.booleans(),
)
def test_a_model_price_gives_back_its_volatility(
    vol: float, strike: float, minutes: float, is_call: bool
) -> None:
    years = minutes * MINUTE
    model = greeks(SPOT, strike, years, vol, is_call, RATE)
    vega = float(model.vega) * 100.0  # per unit of sigma
    assume(vega > 1e-4)  # below, the price pins sigma down to less than the rounding
    e = enrich(model.price, SPOT, strike, years, is_call, RATE)
    assert not e.unsolved.any()
    # half a unit of the sixth decimal, plus the price's last bits (measured 1.4e-11) / vega
    assert abs(float(e.iv) - vol) <= 5e-7 + 1e-10 / vega


_ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(
        st.tuples(_ANY_FLOAT, _ANY_FLOAT, _ANY_FLOAT, _ANY_FLOAT, st.booleans()),
        min_size=1,
        max_size=12,
    )
)
def test_any_input_is_published_or_unsolved_without_warnings(
    rows: list[tuple[float, float, float, float, bool]],
) -> None:
    prices, spots, strikes, years, is_call = (
        np.array(column) for column in zip(*rows, strict=True)
    )
    e = enrich(prices, spots, strikes, years, is_call, RATE)
    assert_published_consistently(e)
    finite = np.isfinite(prices) & np.isfinite(spots) & np.isfinite(strikes) & np.isfinite(years)
    usable = finite & (prices > 0) & (spots > 0) & (strikes > 0) & (years >= MIN_YEARS)
    assert np.all(e.unsolved[~usable])


@settings(max_examples=300, deadline=None)
@given(
    last_price=st.floats(0.05, 13_000.0),
    strike=st.floats(12_000.0, 36_000.0),
    minutes=st.floats(1.0, 120 * 1440.0),
    is_call=st.booleans(),
)
def test_a_solved_volatility_reprices_the_trade(
    last_price: float, strike: float, minutes: float, is_call: bool
) -> None:
    years = minutes * MINUTE
    e = enrich(last_price, SPOT, strike, years, is_call, RATE)
    assert_published_consistently(e)
    if e.unsolved.any():
        return
    repriced = float(price(SPOT, strike, years, e.iv, is_call, RATE))
    # the IV is rounded to six decimals: the price moves by vega (per unit) times that
    assert abs(repriced - last_price) <= 5e-7 * float(e.vega) * 100.0 * 1.01 + 1e-9 * SPOT
