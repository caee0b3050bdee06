from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest

from tickfleet.instruments.expiry_calendar import (
    is_monthly_expiry,
    last_weekday_of_month,
    monthly_expiries,
    weekly_expiries,
)

TUESDAY, THURSDAY = 1, 3
DAYS_2025_2026 = [date(2025, 1, 1) + timedelta(days=n) for n in range(0, 730, 3)]


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [(2025, 11, date(2025, 11, 25)), (2025, 12, date(2025, 12, 30)), (2026, 1, date(2026, 1, 27))],
)
def test_last_tuesday_of_known_months(year: int, month: int, expected: date) -> None:
    assert last_weekday_of_month(year, month, TUESDAY) == expected


@pytest.mark.parametrize("weekday", [TUESDAY, THURSDAY])
@pytest.mark.parametrize("today", DAYS_2025_2026, ids=str)
def test_weekly_expiries_are_consecutive_weeks_from_today(today: date, weekday: int) -> None:
    days = weekly_expiries(today, weekday, 5)
    assert len(days) == 5
    assert all(day.weekday() == weekday for day in days)
    assert today <= days[0] < today + timedelta(days=7)
    assert all(later - earlier == timedelta(days=7) for earlier, later in pairwise(days))


@pytest.mark.parametrize("weekday", [TUESDAY, THURSDAY])
@pytest.mark.parametrize("today", DAYS_2025_2026, ids=str)
def test_monthly_expiries_are_the_last_weekday_of_consecutive_months(
    today: date, weekday: int
) -> None:
    days = monthly_expiries(today, weekday, 3)
    assert len(days) == 3
    for day in days:
        assert day >= today
        assert day.weekday() == weekday
        assert (day + timedelta(days=7)).month != day.month
    months = [day.year * 12 + day.month for day in days]
    assert months == list(range(months[0], months[0] + 3))
    assert months[0] - (today.year * 12 + today.month) in (0, 1)


def test_expiry_day_itself_counts() -> None:
    assert weekly_expiries(date(2025, 11, 4), TUESDAY, 1) == [date(2025, 11, 4)]
    assert monthly_expiries(date(2025, 11, 25), TUESDAY, 1) == [date(2025, 11, 25)]


def test_the_day_after_a_monthly_expiry_moves_to_the_next_month() -> None:
    assert monthly_expiries(date(2025, 11, 26), TUESDAY, 2) == [
        date(2025, 12, 30),
        date(2026, 1, 27),
    ]


def test_monthly_expiry_recognition() -> None:
    assert is_monthly_expiry(date(2025, 11, 25), TUESDAY)
    assert not is_monthly_expiry(date(2025, 11, 18), TUESDAY)
    assert is_monthly_expiry(date(2025, 11, 27), THURSDAY)


def test_zero_count_gives_no_days() -> None:
    assert weekly_expiries(date(2025, 11, 4), TUESDAY, 0) == []
    assert monthly_expiries(date(2025, 11, 4), TUESDAY, 0) == []
