"""Black-Scholes prices, greeks and implied volatility for whole option chains at once.

NIFTY index options are European and the index pays no dividend worth modelling
tick by tick, so the plain Black-Scholes model with a continuous rate is the market
convention. Every function takes arrays (anything NumPy broadcasts) so a chain of
thousands of options costs a few array operations, not a Python loop per option.

Time is in calendar years of 365 days, the same basis as theta per day. Time and
volatility are floored (one minute, 0.01 %) so expiry-day and degenerate inputs give
finite numbers instead of divisions by zero; a non-positive or non-finite spot or
strike gives NaN for that option only, without a NumPy warning. ``implied_vol`` turns
prices into the coordinates of ``tickfleet.market.implied``, which does the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tickfleet.market.implied import implied_total_vol
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


def _flat(values: NDArray[_Element], shape: tuple[int, ...]) -> NDArray[_Element]:
    if values.shape != shape:  # broadcast_to costs microseconds even when it has nothing to do
        values = np.broadcast_to(values, shape)
    return values.ravel()


def implied_vol(
    option_price: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    years: ArrayLike,
    is_call: ArrayLike,
    rate: float,
    *,
    max_iter: int = 50,
    vol_tolerance: float = 1e-4,
) -> FloatArray:
    """The volatility that reproduces each price; NaN where none exists or none was found.

    No volatility exists for a price outside the range that volatilities between
    ``IV_LOW`` and ``IV_HIGH`` produce, e.g. below the European no-arbitrage bound
    ``S - K e^{-rT}`` of a call. The search (``tickfleet.market.implied``) stops an
    option once a step moves its volatility by less than ``vol_tolerance`` of itself;
    that step is still taken, and Halley's cubic convergence leaves it within about
    1e-11 (relative) of where the steps stop moving. It usually takes two steps; an
    option still moving after ``max_iter`` steps is NaN. A price with no time value
    left in a double (deep in the money, far from expiry) determines no volatility; it
    is NaN unless rounding left it a trace of time value.
    """
    x = _inputs(spot, strike, years, IV_LOW, is_call, rate)
    target = np.asarray(option_price, dtype=np.float64)
    shape = np.broadcast_shapes(target.shape, x.spot.shape)
    s, k, t = _flat(x.spot, shape), _flat(x.strike, shape), _flat(x.years, shape)
    sqrt_t = np.sqrt(t)
    total = implied_total_vol(
        _flat(target, shape) * np.exp(0.5 * x.rate * t) / np.sqrt(s * k),
        np.log(s / k) + x.rate * t,
        _flat(x.is_call, shape),
        IV_LOW * sqrt_t,
        IV_HIGH * sqrt_t,
        max_iter=max_iter,
        tolerance=vol_tolerance,
    )
    shaped: FloatArray = (total / sqrt_t).reshape(shape)
    return shaped
