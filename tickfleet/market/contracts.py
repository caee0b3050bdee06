"""The option contracts the simulated chain prices, and the frozen state of each tick.

Kept apart from the book so the array layout can depend on these types without
depending on the book; ``tickfleet.market.options`` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, Protocol

InstrumentType = Literal["CE", "PE"]


@dataclass(frozen=True, slots=True)
class OptionContract:
    """What the book needs to know about one listed option."""

    instrument_token: int
    tradingsymbol: str
    instrument_type: InstrumentType
    strike: float
    expiry: date
    lot_size: int | None = None  # None: the book's (``TICKFLEET_MOCK_LOT_SIZE``)

    def __post_init__(self) -> None:
        if self.instrument_type not in ("CE", "PE"):
            raise ValueError(f"instrument_type must be CE or PE, not {self.instrument_type!r}")
        if not self.strike > 0:
            raise ValueError("strike must be positive")
        if self.lot_size is not None and self.lot_size <= 0:
            raise ValueError("lot_size must be positive")

    @property
    def is_call(self) -> bool:
        return self.instrument_type == "CE"


class ListedInstrument(Protocol):
    """An instrument as the registry lists it: the fields the fleet reads from a registry
    row (``tickfleet.instruments.model.Instrument`` has them all).

    Defined here, below the registry, so that pricing, tick payloads, subscription events
    and health can name a listed instrument without importing the registry (pricing may
    not: ``tests/unit/test_layering.py``).
    """

    @property
    def instrument_token(self) -> int: ...

    @property
    def tradingsymbol(self) -> str: ...

    @property
    def underlying(self) -> str: ...

    @property
    def instrument_type(self) -> str: ...

    @property
    def strike(self) -> float: ...

    @property
    def expiry(self) -> date | None: ...

    @property
    def segment(self) -> str: ...

    @property
    def exchange(self) -> str: ...

    @property
    def lot_size(self) -> int: ...

    @property
    def tick_size(self) -> float: ...

    @property
    def is_index(self) -> bool: ...


def option_contract(row: ListedInstrument, lot_size: int | None = None) -> OptionContract | None:
    """The contract of a registry row (traded in lots of ``lot_size``, the row's), or None
    when the row is not a dated CE or PE."""
    if row.expiry is None or row.instrument_type not in ("CE", "PE") or not row.strike > 0:
        return None
    kind: InstrumentType = "CE" if row.instrument_type == "CE" else "PE"
    return OptionContract(
        row.instrument_token, row.tradingsymbol, kind, row.strike, row.expiry, lot_size
    )


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
