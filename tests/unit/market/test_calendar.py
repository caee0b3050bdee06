"""Trading days from exchange-calendars, checked against NSE's published 2026 list."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tickfleet.instruments.expiry_calendar import monthly_expiries, weekly_expiries
from tickfleet.market.calendar import WEEKDAYS_ONLY, TradingCalendar, load_calendar

TUESDAY = 1

# NSE circular "Trading holidays for the calendar year 2026" (equity and equity derivatives
# segments), with the 15 January closure NSE added for the Maharashtra municipal elections.
# Test data to check the library against; the fleet itself reads only the library.
NSE_2026_WEEKDAY_HOLIDAYS = {
    date(2026, 1, 15),
    date(2026, 1, 26),
    date(2026, 3, 3),
    date(2026, 3, 26),
    date(2026, 3, 31),
    date(2026, 4, 3),
    date(2026, 4, 14),
    date(2026, 5, 1),
    date(2026, 5, 28),
    date(2026, 6, 26),
    date(2026, 9, 14),
    date(2026, 10, 2),
    date(2026, 10, 20),
    date(2026, 11, 10),
    date(2026, 11, 24),
    date(2026, 12, 25),
}


@pytest.fixture(scope="module")
def xbom() -> TradingCalendar:
    return load_calendar("XBOM")


def test_the_library_closes_exactly_on_nse_2026_holidays(xbom: TradingCalendar) -> None:
    days = [date(2026, 1, 1) + timedelta(n) for n in range(365)]
    closed = {d for d in days if d.weekday() < 5 and not xbom.is_trading_day(d)}
    assert closed == NSE_2026_WEEKDAY_HOLIDAYS


def test_weekends_are_closed_and_ordinary_weekdays_open(xbom: TradingCalendar) -> None:
    assert not xbom.is_trading_day(date(2026, 6, 13))  # Saturday
    assert not xbom.is_trading_day(date(2026, 6, 14))  # Sunday
    assert xbom.is_trading_day(date(2026, 6, 10))


def test_previous_trading_day_skips_holidays_and_weekends(xbom: TradingCalendar) -> None:
    assert xbom.previous_trading_day(date(2026, 11, 24)) == date(2026, 11, 23)
    assert xbom.previous_trading_day(date(2026, 4, 3)) == date(2026, 4, 2)
    assert xbom.previous_trading_day(date(2026, 1, 26)) == date(2026, 1, 23)  # Mon → Fri
    assert xbom.previous_trading_day(date(2026, 6, 10)) == date(2026, 6, 10)


def test_tuesday_expiries_on_holidays_move_to_the_monday(xbom: TradingCalendar) -> None:
    weeks = weekly_expiries(date(2026, 11, 1), TUESDAY, 6, xbom)
    assert weeks == [
        date(2026, 11, 3),
        date(2026, 11, 9),  # 10 Nov: Diwali Balipratipada
        date(2026, 11, 17),
        date(2026, 11, 23),  # 24 Nov: Guru Nanak Jayanti
        date(2026, 12, 1),
        date(2026, 12, 8),
    ]
    assert monthly_expiries(date(2026, 3, 1), TUESDAY, 1, xbom) == [date(2026, 3, 30)]


def test_an_expiry_moved_before_today_is_not_offered(xbom: TradingCalendar) -> None:
    # On the holiday itself, that week's expiry (the Monday) is already behind us.
    assert weekly_expiries(date(2026, 11, 24), TUESDAY, 2, xbom) == [
        date(2026, 12, 1),
        date(2026, 12, 8),
    ]


def test_coverage_ends_where_the_library_says(xbom: TradingCalendar) -> None:
    assert xbom.last_known is not None and xbom.last_known >= date(2026, 12, 31)
    assert xbom.knows(xbom.last_known)
    assert not xbom.knows(xbom.last_known + timedelta(days=1))
    beyond = xbom.last_known + timedelta(days=7)
    weekday = beyond - timedelta(days=beyond.weekday())  # a Monday past the coverage
    assert xbom.is_trading_day(weekday)  # only weekends are known there


def test_no_calendar_means_weekdays_only() -> None:
    assert load_calendar("none") is WEEKDAYS_ONLY
    assert WEEKDAYS_ONLY.is_trading_day(date(2026, 11, 24))
    assert WEEKDAYS_ONLY.knows(date(2100, 1, 1))


def test_an_unknown_calendar_name_fails_at_start_up() -> None:
    with pytest.raises(Exception, match="NOPE"):
        load_calendar("NOPE")
