"""Trading days: weekends and the exchange's holidays, from a maintained calendar.

NSE and BSE close on the same days for equity derivatives. ``exchange-calendars`` keeps
BSE's list (``XBOM``); its 2026 closures match NSE's published circular day for day,
15 January included. The library records holidays up to a known last session and
refuses dates beyond it; past that day only weekends are known, ``knows`` says so, and
``/health`` warns before the fleet runs out of calendar.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

SATURDAY = 5
NO_CALENDAR = "none"
# Exchanges never close this many days in a row; a longer walk means a broken calendar.
MAX_CLOSED_RUN = 30


@dataclass(frozen=True, slots=True)
class TradingCalendar:
    """The days an exchange trades: weekdays that are not holidays.

    ``last_known`` is the last day the holiday list covers (None: weekends only, no end).
    """

    name: str
    holidays: frozenset[date] = frozenset()
    last_known: date | None = None

    def is_trading_day(self, day: date) -> bool:
        return day.weekday() < SATURDAY and day not in self.holidays

    def previous_trading_day(self, day: date) -> date:
        """``day`` itself when the exchange trades then, else the trading day before it."""
        for back in range(MAX_CLOSED_RUN):
            candidate = day - timedelta(days=back)
            if self.is_trading_day(candidate):
                return candidate
        raise ValueError(f"{self.name}: no trading day in the {MAX_CLOSED_RUN} days to {day}")

    def knows(self, day: date) -> bool:
        """Whether the holiday list covers ``day`` (beyond it, only weekends are known)."""
        return self.last_known is None or day <= self.last_known


WEEKDAYS_ONLY = TradingCalendar(NO_CALENDAR)


@lru_cache(maxsize=4)
def load_calendar(name: str) -> TradingCalendar:
    """The named exchange-calendars calendar as holidays; ``none`` gives weekdays only.

    Imported here, on first use: the library pulls in pandas (about half a second), which
    only processes that judge market hours or expiries need.
    """
    if name.lower() == NO_CALENDAR:
        return WEEKDAYS_ONLY
    import exchange_calendars  # noqa: PLC0415 - heavy, and needed by few processes

    calendar = exchange_calendars.get_calendar(name)
    sessions = {stamp.date() for stamp in calendar.sessions}
    first, last = calendar.first_session.date(), calendar.last_session.date()
    weekdays = (first + timedelta(days=n) for n in range((last - first).days + 1))
    holidays = frozenset(d for d in weekdays if d.weekday() < SATURDAY and d not in sessions)
    return TradingCalendar(name, holidays, last)
