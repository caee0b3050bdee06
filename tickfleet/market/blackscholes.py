"""Black-Scholes prices, greeks and implied volatility for whole option chains at once.

NIFTY index options are European and the index pays no dividend worth modelling
tick by tick, so the plain Black-Scholes model with a continuous rate is the market
convention. Every function takes arrays (anything NumPy broadcasts) so a chain of
thousands of options costs a few array operations, not a Python loop per option.

Time is in calendar years of 365 days, the same basis as theta per day. Time and
volatility are floored (one minute, 0.01 %) so expiry-day and degenerate inputs give
finite numbers instead of divisions by zero; a non-positive or non-finite spot or
strike gives NaN for that option only, without a NumPy warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tickfleet.market.normal import cdf_pair, pdf

FloatArray = NDArray[np.float64]
_Element = TypeVar("_Element", bound=np.generic)

DAYS_PER_YEAR = 365.0
MIN_YEARS = 60.0 / (DAYS_PER_YEAR * 86_400.0)
MIN_VOL = 1e-4
IV_LOW = 1e-4
IV_HIGH = 5.0


@dataclass(frozen=True, slots=True)
class Greeks:
    """Price and sensitivities, one array element per option.

    ``theta`` is per calendar day and ``vega`` per volatility point (0.01 of sigma),
    the units traders quote them in.
    """

    price: FloatArray
    delta: FloatArray
    gamma: FloatArray
    theta: FloatArray
    vega: FloatArray


@dataclass(frozen=True, slots=True)
class _Inputs:
    spot: FloatArray
    strike: FloatArray
    years: FloatArray
    vol: FloatArray
    is_call: NDArray[np.bool_]
    rate: float


@dataclass(frozen=True, slots=True)
class _Terms:
    """The intermediate quantities every output shares."""

    d1: FloatArray
    sqrt_t: FloatArray
    discounted_strike: FloatArray
    n_d1: FloatArray
    n_minus_d1: FloatArray
    n_d2: FloatArray
    n_minus_d2: FloatArray


def _positive_or_nan(values: FloatArray) -> FloatArray:
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _inputs(
    spot: ArrayLike,
    strike: ArrayLike,
    years: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    rate: float,
) -> _Inputs:
    s, k, t, v, c = np.broadcast_arrays(
        np.asarray(spot, dtype=np.float64),
        np.asarray(strike, dtype=np.float64),
        np.asarray(years, dtype=np.float64),
        np.asarray(vol, dtype=np.float64),
        np.asarray(is_call, dtype=np.bool_),
    )
    return _Inputs(
        spot=_positive_or_nan(s),
        strike=_positive_or_nan(k),
        years=np.maximum(t, MIN_YEARS),
        vol=np.maximum(v, MIN_VOL),
        is_call=c,
        rate=float(rate),
    )


def _terms(x: _Inputs) -> _Terms:
    sqrt_t = np.sqrt(x.years)
    spread = x.vol * sqrt_t
    d1 = (np.log(x.spot / x.strike) + (x.rate + 0.5 * x.vol * x.vol) * x.years) / spread
    discounted_strike = x.strike * np.exp(-x.rate * x.years)
    return _Terms(d1, sqrt_t, discounted_strike, *cdf_pair(d1), *cdf_pair(d1 - spread))


def _price(x: _Inputs, terms: _Terms) -> FloatArray:
    call = x.spot * terms.n_d1 - terms.discounted_strike * terms.n_d2
    put = terms.discounted_strike * terms.n_minus_d2 - x.spot * terms.n_minus_d1
    return np.where(x.is_call, call, put)


def price(
    spot: ArrayLike,
    strike: ArrayLike,
    years: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    rate: float,
) -> FloatArray:
    """Option prices alone (cheaper than ``greeks`` when nothing else is needed)."""
    x = _inputs(spot, strike, years, vol, is_call, rate)
    return _price(x, _terms(x))


def greeks(
    spot: ArrayLike,
    strike: ArrayLike,
    years: ArrayLike,
    vol: ArrayLike,
    is_call: ArrayLike,
    rate: float,
) -> Greeks:
    """Price, delta, gamma, theta per day and vega per vol point for every option."""
    x = _inputs(spot, strike, years, vol, is_call, rate)
    terms = _terms(x)
    density = pdf(terms.d1)
    decay = -x.spot * density * x.vol / (2.0 * terms.sqrt_t)
    carry = x.rate * terms.discounted_strike
    theta = np.where(x.is_call, decay - carry * terms.n_d2, decay + carry * terms.n_minus_d2)
    return Greeks(
        price=_price(x, terms),
        delta=np.where(x.is_call, terms.n_d1, -terms.n_minus_d1),
        gamma=density / (x.spot * x.vol * terms.sqrt_t),
        theta=theta / DAYS_PER_YEAR,
        vega=x.spot * density * terms.sqrt_t / 100.0,
    )


@dataclass(slots=True)
class _Search:
    """Per-option state of the implied-volatility search (flattened arrays)."""

    target: FloatArray
    inputs: _Inputs
    shape: tuple[int, ...]
    solvable: NDArray[np.bool_]
    tolerance: FloatArray
    sigma: FloatArray
    low: FloatArray
    high: FloatArray

    def take(self, rows: NDArray[np.intp]) -> _Inputs:
        x = self.inputs
        return _Inputs(
            x.spot[rows], x.strike[rows], x.years[rows], self.sigma[rows], x.is_call[rows], x.rate
        )


def _prepare(option_price: ArrayLike, x: _Inputs) -> _Search:
    """Flattened search state; options whose price no volatility reaches are unsolvable."""
    target = np.asarray(option_price, dtype=np.float64)
    shape = np.broadcast_shapes(target.shape, x.spot.shape)
    target = np.broadcast_to(target, shape).ravel()
    x = _flat(x, shape)
    low_price, high_price = _bounds(x)
    tolerance = 1e-9 * np.maximum(target - low_price, 0.0) + 1e-13 * x.spot
    return _Search(
        target=target,
        inputs=x,
        shape=shape,
        solvable=(target >= low_price - tolerance) & (target <= high_price + tolerance),
        tolerance=tolerance,
        sigma=_initial_sigma(target - low_price, x),
        low=np.full_like(target, IV_LOW),
        high=np.full_like(target, IV_HIGH),
    )


def _flat(x: _Inputs, shape: tuple[int, ...]) -> _Inputs:
    def flat(values: NDArray[_Element]) -> NDArray[_Element]:
        return np.broadcast_to(values, shape).ravel()

    return _Inputs(
        flat(x.spot), flat(x.strike), flat(x.years), flat(x.vol), flat(x.is_call), x.rate
    )


def _price_and_vega(x: _Inputs) -> tuple[FloatArray, FloatArray]:
    """Price and raw vega (per unit sigma), what a Newton step on sigma needs."""
    terms = _terms(x)
    return _price(x, terms), x.spot * pdf(terms.d1) * terms.sqrt_t


def _bounds(x: _Inputs) -> tuple[FloatArray, FloatArray]:
    """Prices at the lowest and highest volatility searched: the attainable range."""
    low = _price(*_with_vol(x, IV_LOW))
    high = _price(*_with_vol(x, IV_HIGH))
    return low, high


def _with_vol(x: _Inputs, vol: float) -> tuple[_Inputs, _Terms]:
    y = _Inputs(x.spot, x.strike, x.years, np.full_like(x.spot, vol), x.is_call, x.rate)
    return y, _terms(y)


def _initial_sigma(time_value: FloatArray, x: _Inputs) -> FloatArray:
    """Start where the price is most linear in sigma (Manaster-Koehler), else near ATM.

    From that inflection point Newton's method converges monotonically; the
    Brenner-Subrahmanyam estimate (on the time value) covers the at-the-money case,
    where the inflection point is zero.
    """
    forward_moneyness = np.abs(np.log(x.spot / x.strike) + x.rate * x.years)
    inflection = np.sqrt(2.0 * forward_moneyness / x.years)
    at_the_money = np.sqrt(2.0 * np.pi / x.years) * np.maximum(time_value, 0.0) / x.spot
    start = np.nan_to_num(np.maximum(inflection, at_the_money), nan=0.2)
    clipped: FloatArray = np.clip(start, 2.0 * IV_LOW, 0.5 * IV_HIGH)
    return clipped


def _step(search: _Search, rows: NDArray[np.intp], vol_tolerance: float) -> NDArray[np.bool_]:
    """One safeguarded Newton step on ``rows``; returns which of them have converged."""
    model, vega = _price_and_vega(search.take(rows))
    error = model - search.target[rows]
    sigma = search.sigma[rows]
    high = np.where(error > 0, sigma, search.high[rows])
    low = np.where(error < 0, sigma, search.low[rows])
    newton = np.full_like(sigma, np.nan)
    np.divide(error, vega, out=newton, where=vega > 1e-300)
    newton = sigma - newton
    inside = (newton > low) & (newton < high)
    following = np.where(inside, newton, 0.5 * (low + high))
    converged = np.abs(error) <= search.tolerance[rows]
    search.sigma[rows] = np.where(converged, sigma, following)
    search.low[rows], search.high[rows] = low, high
    return converged | (high - low <= vol_tolerance)


def implied_vol(
    option_price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    years: ArrayLike,
    is_call: ArrayLike,
    rate: float,
    *,
    max_iter: int = 100,
    vol_tolerance: float = 1e-10,
) -> FloatArray:
    """The volatility that reproduces each price; NaN where none exists or none was found.

    No volatility exists for a price outside the range that volatilities between
    ``IV_LOW`` and ``IV_HIGH`` produce, e.g. below the European no-arbitrage bound
    ``S - K e^{-rT}`` of a call. Newton steps are kept inside a shrinking bracket and
    replaced by bisection whenever they would leave it, so every option converges
    within ``max_iter`` iterations (bisection alone needs about 36).
    """
    search = _prepare(option_price, _inputs(spot, strike, years, IV_LOW, is_call, rate))
    result = np.full_like(search.target, np.nan)
    rows = np.flatnonzero(search.solvable)
    for _ in range(max_iter):
        if rows.size == 0:
            break
        done = _step(search, rows, vol_tolerance)
        result[rows[done]] = search.sigma[rows[done]]
        rows = rows[~done]
    shaped: FloatArray = result.reshape(search.shape)
    return shaped
