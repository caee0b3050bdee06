from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tickfleet.market.expiry import SECONDS_PER_YEAR, expiry_datetime, years_to_expiry

pytestmark = pytest.mark.timeout(10)

IST = ZoneInfo("Asia/Kolkata")
TZ = "Asia/Kolkata"
EXPIRY = date(2025, 1, 7)


def test_expiry_is_at_the_close_in_kolkata() -> None:
    at = expiry_datetime(EXPIRY, TZ)
    assert at == datetime(2025, 1, 7, 10, 0, tzinfo=UTC)
    assert at.utcoffset() == timedelta(hours=5, minutes=30)


def test_years_on_expiry_morning() -> None:
    now = datetime(2025, 1, 7, 9, 30, tzinfo=IST)
    assert years_to_expiry(now, EXPIRY, TZ) == pytest.approx(6 * 3600 / SECONDS_PER_YEAR)


def test_one_week_is_seven_calendar_days() -> None:
    now = datetime(2024, 12, 31, 15, 30, tzinfo=IST)
    assert years_to_expiry(now, EXPIRY, TZ) == pytest.approx(7 / 365)


def test_same_instant_in_another_zone_gives_the_same_answer() -> None:
    local = datetime(2025, 1, 6, 20, 0, tzinfo=IST)
    assert years_to_expiry(local.astimezone(UTC), EXPIRY, TZ) == years_to_expiry(local, EXPIRY, TZ)


def test_zero_once_expired() -> None:
    assert years_to_expiry(datetime(2025, 1, 7, 15, 30, tzinfo=IST), EXPIRY, TZ) == 0.0
    assert years_to_expiry(datetime(2025, 1, 8, 9, 0, tzinfo=IST), EXPIRY, TZ) == 0.0


def test_timezone_and_time_are_parameters() -> None:
    now = datetime(2025, 1, 7, 0, 0, tzinfo=UTC)
    years = years_to_expiry(now, EXPIRY, "UTC", at=time(12, 0))
    assert years == pytest.approx(12 * 3600 / SECONDS_PER_YEAR)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        years_to_expiry(datetime(2025, 1, 7, 9, 30), EXPIRY, TZ)
