"""Time to expiry, on the calendar-year basis the pricing uses.

NSE index options stop trading at the close, 15:30 in Asia/Kolkata, on expiry day;
measuring to that instant (not to midnight) makes expiry-day prices decay to intrinsic
value by the close, as the real ones do.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from tickfleet.market.blackscholes import DAYS_PER_YEAR

EXPIRY_TIME = time(15, 30)
SECONDS_PER_YEAR = DAYS_PER_YEAR * 86_400.0


def expiry_datetime(expiry: date, tz: str, at: time = EXPIRY_TIME) -> datetime:
    """The aware instant a contract expiring on ``expiry`` stops trading."""
    return datetime.combine(expiry, at, tzinfo=ZoneInfo(tz))


def years_to_expiry(now: datetime, expiry: date, tz: str, at: time = EXPIRY_TIME) -> float:
    """Calendar years from ``now`` to the expiry instant, 0.0 once it has passed.

    ``now`` must be timezone-aware: a naive time would be read in whatever zone the
    host happens to run in, which is how a fleet ends up an offset of hours wrong.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    seconds = (expiry_datetime(expiry, tz, at) - now).total_seconds()
    return max(seconds, 0.0) / SECONDS_PER_YEAR
