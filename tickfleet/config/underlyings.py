"""The underlyings a fleet streams: each index's contract facts and simulated defaults.

``TICKFLEET_UNDERLYINGS`` names them (``NIFTY`` by default). Each name is looked up
here, so every part of the fleet (the generated universe, the instrument filter, the
channels, the streams, the simulated market) reads one record per underlying instead
of assuming NIFTY.

The facts are the exchanges' as of the 2026 series and serve when no instruments dump
is at hand; with Kite credentials or a CSV dump, the dump's rows (lot size, tick size,
expiries) are the truth and these only choose which rows to keep:

- index tokens are Kite's (``exchange_token << 8 | 9``, the INDICES segment): NIFTY 50
  256265, NIFTY BANK 260105, NIFTY FIN SERVICE 257801, NIFTY MID SELECT 288009,
  SENSEX 265, BANKEX 274441;
- NSE's index derivatives expire on Tuesdays and BSE's on Thursdays (since September
  2025); only one index per exchange kept weekly contracts (NIFTY, SENSEX), the others
  expire on the month's last expiry weekday; an expiry on a holiday moves to the
  trading day before (``tickfleet.instruments.expiry_calendar``);
- lot sizes from NSE's revision for the January 2026 series (NIFTY 65, BANKNIFTY 30,
  FINNIFTY 60, MIDCPNIFTY 120) and BSE's (SENSEX 20, BANKEX 30).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

TUESDAY, THURSDAY = 1, 3


class UnknownUnderlyingError(ValueError):
    """A configured underlying this fleet has no facts for."""


@dataclass(frozen=True, slots=True)
class Underlying:
    """One index whose options the fleet streams.

    ``name`` is what its derivatives trade under (``BANKNIFTY``); ``index_symbol`` what
    Kite lists the index as (``NIFTY BANK``); ``code`` tells apart the generated
    contracts of the underlyings that share one derivatives exchange.
    """

    name: str
    index_symbol: str
    index_exchange_token: int
    index_exchange: str  # NSE or BSE: where the index itself is quoted
    exchange: str  # NFO or BFO: where its options trade
    strike_step: int
    lot_size: int
    expiry_weekday: int  # Monday=0
    weekly: bool  # weekly contracts besides the monthly ones
    code: int
    spot: float  # the simulated market's starting level
    tick_size: float = 0.05

    @property
    def index_token(self) -> int:
        return self.index_exchange_token << 8 | 9

    @property
    def quote_key(self) -> str:
        """The index in Kite's quote API (``NSE:NIFTY 50``)."""
        return f"{self.index_exchange}:{self.index_symbol}"

    @property
    def segment(self) -> str:
        return f"{self.exchange}-OPT"

    @property
    def slug(self) -> str:
        """Lower case, for channel and stream names (``banknifty``)."""
        return self.name.lower()


# fmt: off
_FACTS = (
    # name        index symbol        exch.token quoted options step lot expires weekly code spot
    ("NIFTY",      "NIFTY 50",          1001, "NSE", "NFO", 50,  65,  TUESDAY,  True,  0, 24000.0),
    ("BANKNIFTY",  "NIFTY BANK",        1016, "NSE", "NFO", 100, 30,  TUESDAY,  False, 1, 57000.0),
    ("FINNIFTY",   "NIFTY FIN SERVICE", 1007, "NSE", "NFO", 50,  60,  TUESDAY,  False, 2, 27000.0),
    ("MIDCPNIFTY", "NIFTY MID SELECT",  1125, "NSE", "NFO", 25,  120, TUESDAY,  False, 3, 13000.0),
    ("SENSEX",     "SENSEX",            1,    "BSE", "BFO", 100, 20,  THURSDAY, True,  0, 82000.0),
    ("BANKEX",     "BANKEX",            1072, "BSE", "BFO", 100, 30,  THURSDAY, False, 1, 63000.0),
)
# fmt: on
KNOWN = MappingProxyType({row[0]: Underlying(*row) for row in _FACTS})
DEFAULT = ("NIFTY",)


def parse_underlyings(text: str) -> tuple[str, ...]:
    """``"nifty, BANKNIFTY"`` → ``("NIFTY", "BANKNIFTY")``: upper case, in order, once each.

    Raises ``UnknownUnderlyingError`` naming what is known, so a typo stops the fleet at
    start-up instead of streaming nothing.
    """
    names = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not names:
        raise UnknownUnderlyingError("TICKFLEET_UNDERLYINGS names no underlying")
    unknown = [n for n in names if n not in KNOWN]
    if unknown:
        raise UnknownUnderlyingError(
            f"TICKFLEET_UNDERLYINGS: unknown {', '.join(unknown)}; known: {', '.join(KNOWN)}"
        )
    return tuple(dict.fromkeys(names))


def underlyings_of(names: Iterable[str]) -> tuple[Underlying, ...]:
    return tuple(KNOWN[n] for n in names)


def by_index_token(token: int) -> Underlying | None:
    return next((u for u in KNOWN.values() if u.index_token == token), None)
