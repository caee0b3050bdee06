"""Which days NIFTY options expire on: every week on one weekday, monthly on the last one.

An expiry that falls on an exchange holiday moves to the previous trading day, as NSE
moves it (the Tuesday expiry of Diwali week 2026 traded out on the Monday).
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta

from tickfleet.market.calendar import WEEKDAYS_ONLY, TradingCalendar

# Enough nominal weeks to find ``count`` expiries even if several fall on holidays.
_SPARE_WEEKS = 8


def last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    """The last ``weekday`` (Monday=0) of the month: the nominal monthly expiry day."""
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def monthly_expiry(
    year: int, month: int, weekday: int, trading: TradingCalendar = WEEKDAYS_ONLY
) -> date:
    """The month's expiry day: its last ``weekday``, or the trading day before it."""
    return trading.previous_trading_day(last_weekday_of_month(year, month, weekday))


def is_monthly_expiry(day: date, weekday: int, trading: TradingCalendar = WEEKDAYS_ONLY) -> bool:
    return day == monthly_expiry(day.year, day.month, weekday, trading)


def weekly_expiries(
    today: date, weekday: int, count: int, trading: TradingCalendar = WEEKDAYS_ONLY
) -> list[date]:
    """The next ``count`` expiry days, today included when today is one."""
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    found: list[date] = []
    week = 0
    while len(found) < count and week < count + _SPARE_WEEKS:
        day = trading.previous_trading_day(first + timedelta(weeks=week))
        if day >= today and day not in found:
            found.append(day)
        week += 1
    return found


def monthly_expiries(
    today: date, weekday: int, count: int, trading: TradingCalendar = WEEKDAYS_ONLY
) -> list[date]:
    """The next ``count`` monthly expiry days, today included when today is one."""
    found: list[date] = []
    year, month = today.year, today.month
    while len(found) < count:
        day = monthly_expiry(year, month, weekday, trading)
        if day >= today:
            found.append(day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found
