"""The instrument record shared by the registry, the streams and the simulated market."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date
from types import MappingProxyType

OPTION_TYPES = frozenset({"CE", "PE"})
DERIVATIVE_TYPES = frozenset({"CE", "PE", "FUT"})
INDEX_SEGMENT = "INDICES"

# Kite lists an index under its display name; its derivatives trade under a short name.
INDEX_UNDERLYINGS = MappingProxyType(
    {
        "NIFTY 50": "NIFTY",
        "NIFTY BANK": "BANKNIFTY",
        "NIFTY FIN SERVICE": "FINNIFTY",
        "NIFTY MID SELECT": "MIDCPNIFTY",
        "NIFTY NEXT 50": "NIFTYNXT50",
    }
)

_SYMBOL_ROOT = re.compile(r"[^0-9]+")


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of the instruments dump, plus the underlying it belongs to.

    ``underlying`` is not a dump column; it is derived once on import so that option
    chains and index rows can be selected by the same name (``NIFTY``).
    """

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    underlying: str
    last_price: float
    expiry: date | None
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str
    segment: str
    exchange: str

    @property
    def is_option(self) -> bool:
        return self.instrument_type in OPTION_TYPES

    @property
    def is_index(self) -> bool:
        return self.segment == INDEX_SEGMENT

    def is_expired(self, last_expired_day: date) -> bool:
        """True when the contract's expiry day is on or before ``last_expired_day``.

        Contracts expire at the close of their expiry day, so the caller passes
        ``MarketHours.last_expired_day(now)``: today once the close has passed.
        """
        return self.expiry is not None and self.expiry <= last_expired_day


INSTRUMENT_FIELDS = tuple(field.name for field in fields(Instrument))


def derive_underlying(tradingsymbol: str, name: str, segment: str, instrument_type: str) -> str:
    """The name an instrument's option chain is known by.

    Older dumps leave ``name`` empty for derivatives, so the letters before the first
    digit of the trading symbol (``BANKNIFTY18JAN23500CE`` → ``BANKNIFTY``) stand in.
    """
    if segment == INDEX_SEGMENT:
        return INDEX_UNDERLYINGS.get(tradingsymbol, tradingsymbol)
    if instrument_type not in DERIVATIVE_TYPES:
        return tradingsymbol
    if name:
        return name
    root = _SYMBOL_ROOT.match(tradingsymbol)
    return root.group(0) if root else tradingsymbol
