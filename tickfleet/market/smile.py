"""The implied-volatility smile of the simulated chain.

A flat volatility would price every strike off one number, which no index option
market does: NIFTY puts below the money trade at higher IV than calls above it (the
skew), both wings curve upwards, and the wings of short-dated options are steeper.
A quadratic in log-moneyness reproduces that shape with three numbers an operator can
reason about, and the clamp keeps far wings from producing absurd volatilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from tickfleet.config.settings import Settings

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SmileSpec:
    """Shape of the smile: ``iv = base_iv * (1 + skew*m + curvature(T)*m^2)``, clamped.

    ``m = ln(K / S)``. A negative ``skew`` lifts the put side (strikes below spot).
    ``curvature(T) = curvature + short_dated_curvature * exp(-T / wing_decay_years)``,
    so weekly expiries smile harder than monthly ones.
    """

    base_iv: float = 0.13
    skew: float = -1.5
    curvature: float = 8.0
    short_dated_curvature: float = 40.0
    wing_decay_years: float = 7.0 / 365.0
    floor: float = 0.05
    cap: float = 1.5

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.base_iv <= self.cap:
            raise ValueError("need 0 < floor <= base_iv <= cap")
        if self.wing_decay_years <= 0 or min(self.curvature, self.short_dated_curvature) < 0:
            raise ValueError("curvatures must be >= 0 and wing_decay_years > 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> SmileSpec:
        return cls(base_iv=settings.mock_base_iv)


def smile_iv(spec: SmileSpec, strike: ArrayLike, spot: ArrayLike, years: ArrayLike) -> FloatArray:
    """Implied volatility for each (strike, spot, time to expiry), within the clamp.

    Scalars work too (a 0-d array comes back). Only a non-positive strike or spot,
    which has no log-moneyness, yields NaN.
    """
    k, s, t = np.broadcast_arrays(
        np.asarray(strike, dtype=np.float64),
        np.asarray(spot, dtype=np.float64),
        np.maximum(np.asarray(years, dtype=np.float64), 0.0),
    )
    ratio = np.full(k.shape, np.nan)
    np.divide(k, s, out=ratio, where=(k > 0) & (s > 0))
    m = np.log(ratio)
    curvature = spec.curvature + spec.short_dated_curvature * np.exp(-t / spec.wing_decay_years)
    iv = spec.base_iv * (1.0 + spec.skew * m + curvature * m * m)
    clamped: FloatArray = np.clip(iv, spec.floor, spec.cap)
    return clamped
