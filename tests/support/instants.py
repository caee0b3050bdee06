"""Instants the suite runs at, so no test depends on the day or hour it happens to run.

Fleet processes get ``TICKFLEET_CLOCK_OFFSET_SECONDS`` so that their clock reads one of
these instants when the test starts; in-process code gets a ``ManualClock``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")

# A Wednesday in regular trading hours, no expiry that day; the next weekly expiry is
# Tuesday 2026-06-16 and the monthly one Tuesday 2026-06-30.
FLEET_NOW = datetime(2026, 6, 10, 11, 0, tzinfo=IST)


def offset_to(instant: datetime) -> float:
    """The clock offset that makes "now" read ``instant`` at this moment."""
    return instant.timestamp() - time.time()


def ist(year: int, month: int, day: int, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=IST)


@dataclass(frozen=True)
class Instant:
    """A frozen instant and what is true of it, written down by hand (not computed)."""

    name: str
    at: datetime
    market_open: bool
    last_expired_day: date  # contracts expiring on or before this day are expired


# NIFTY weeklies expire on Tuesdays (moved to the Monday when the Tuesday is a holiday);
# contracts expire at the 15:30 close.
CALENDAR_MATRIX = (
    Instant("expiry day 10:00", ist(2026, 6, 16, 10, 0), True, date(2026, 6, 15)),
    Instant("expiry day 15:29", ist(2026, 6, 16, 15, 29), True, date(2026, 6, 15)),
    Instant("expiry day 15:31", ist(2026, 6, 16, 15, 31), False, date(2026, 6, 16)),
    Instant("expiry day 23:59", ist(2026, 6, 16, 23, 59), False, date(2026, 6, 16)),
    Instant("next morning", ist(2026, 6, 17, 9, 20), True, date(2026, 6, 16)),
    Instant("saturday", ist(2026, 6, 20, 12, 0), False, date(2026, 6, 19)),
    Instant("nse weekday holiday", ist(2026, 11, 24, 11, 0), False, date(2026, 11, 23)),
    Instant("monthly expiry 15:31", ist(2026, 6, 30, 15, 31), False, date(2026, 6, 30)),
    Instant("31 december 23:59", ist(2026, 12, 31, 23, 59), False, date(2026, 12, 31)),
    Instant("1 january 00:01", ist(2027, 1, 1, 0, 1), False, date(2026, 12, 31)),
    Instant("1 january 10:00", ist(2027, 1, 1, 10, 0), True, date(2026, 12, 31)),
)
