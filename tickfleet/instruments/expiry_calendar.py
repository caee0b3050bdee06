"""Which days NIFTY options expire on: every week on one weekday, monthly on the last one.

Exchange holidays (which move an expiry to the previous trading day) are not modelled;
the simulated market only needs a plausible, reproducible calendar.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta


def last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    """The last ``weekday`` (Monday=0) of the month: the monthly expiry day."""
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def is_monthly_expiry(day: date, weekday: int) -> bool:
    return day == last_weekday_of_month(day.year, day.month, weekday)


def weekly_expiries(today: date, weekday: int, count: int) -> list[date]:
    """The next ``count`` expiry days, today included when today is one."""
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    return [first + timedelta(weeks=n) for n in range(count)]


def monthly_expiries(today: date, weekday: int, count: int) -> list[date]:
    """The next ``count`` monthly expiry days, today included when today is one."""
    found: list[date] = []
    year, month = today.year, today.month
    while len(found) < count:
        day = last_weekday_of_month(year, month, weekday)
        if day >= today:
            found.append(day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found
