"""The option contracts the simulated chain prices, and the frozen state of each tick.

Kept apart from the book so the array layout can depend on these types without
depending on the book; ``tickfleet.market.options`` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

InstrumentType = Literal["CE", "PE"]


@dataclass(frozen=True, slots=True)
class OptionContract:
    """What the book needs to know about one listed option."""

    instrument_token: int
    tradingsymbol: str
    instrument_type: InstrumentType
    strike: float
    expiry: date

    def __post_init__(self) -> None:
        if self.instrument_type not in ("CE", "PE"):
            raise ValueError(f"instrument_type must be CE or PE, not {self.instrument_type!r}")
        if not self.strike > 0:
            raise ValueError("strike must be positive")

    @property
    def is_call(self) -> bool:
        return self.instrument_type == "CE"


@dataclass(frozen=True, slots=True)
class MockOptionSnapshot:
    """One simulated option at one tick.

    ``theta`` is per calendar day, ``vega`` per volatility point, ``timestamp`` epoch
    seconds, ``version`` the book's tick number.
    """

    instrument_token: int
    tradingsymbol: str
    instrument_type: InstrumentType
    strike: float
    expiry: date
    last_price: float
    volume: int
    oi: int
    iv: float
    delta: float
    gamma: float
    theta: float
    vega: float
    timestamp: float
    version: int
