from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest

from tickfleet.config.settings import Settings
from tickfleet.config.stream_mode import FeedSetting, StreamMode
from tickfleet.market.hours import MarketHours

pytestmark = pytest.mark.timeout(10)

IST = ZoneInfo("Asia/Kolkata")
MONDAY = (2025, 1, 6)


def at(hour: int, minute: int, second: int = 0, day: tuple[int, int, int] = MONDAY) -> datetime:
    return datetime(*day, hour, minute, second, tzinfo=IST)


@pytest.mark.parametrize(
    ("now", "is_open"),
    [
        (at(9, 14, 59), False),
        (at(9, 15), True),
        (at(12, 0), True),
        (at(15, 29, 59), True),
        (at(15, 30), False),
        (at(22, 0), False),
        (at(11, 0, day=(2025, 1, 10)), True),  # Friday
        (at(11, 0, day=(2025, 1, 11)), False),  # Saturday
        (at(11, 0, day=(2025, 1, 12)), False),  # Sunday
        (datetime(2025, 1, 6, 3, 45, tzinfo=UTC), True),  # 09:15 in Kolkata
        (datetime(2025, 1, 5, 23, 0, tzinfo=UTC), False),  # Monday 04:30 in Kolkata
    ],
)
def test_is_open(now: datetime, is_open: bool) -> None:
    assert MarketHours().is_open(now) is is_open


OPEN, CLOSED = at(10, 0), at(20, 0)


@pytest.mark.parametrize(
    ("now", "override", "credentials", "mock_enabled", "mode"),
    [
        (OPEN, "auto", True, True, "live"),
        (OPEN, "auto", True, False, "live"),
        (OPEN, "auto", False, True, "mock"),  # a developer's machine in market hours
        (OPEN, "auto", False, False, "idle"),
        (CLOSED, "auto", True, True, "mock"),
        (CLOSED, "auto", False, True, "mock"),
        (CLOSED, "auto", True, False, "idle"),
        (CLOSED, "auto", False, False, "idle"),
        (CLOSED, "live", True, True, "live"),
        (CLOSED, "live", False, False, "live"),
        (OPEN, "mock", True, True, "mock"),
        (OPEN, "mock", True, False, "mock"),
    ],
)
def test_feed_mode(
    now: datetime, override: FeedSetting, credentials: bool, mock_enabled: bool, mode: StreamMode
) -> None:
    assert MarketHours().feed_mode(now, override, credentials, mock_enabled) == mode


@pytest.mark.parametrize(
    ("now", "override", "credentials", "mock_enabled", "mode"),
    [
        (CLOSED, "auto", True, True, "replay"),  # the last session, not a simulation
        (CLOSED, "auto", False, False, "replay"),
        (OPEN, "auto", True, True, "live"),
        (OPEN, "auto", False, True, "mock"),  # old prices never pass for the day's
        (OPEN, "replay", True, True, "replay"),  # forced, whatever the hours
        (CLOSED, "mock", False, True, "mock"),
    ],
)
def test_feed_mode_with_replay_off_hours(
    now: datetime, override: FeedSetting, credentials: bool, mock_enabled: bool, mode: StreamMode
) -> None:
    hours = MarketHours()
    assert hours.feed_mode(now, override, credentials, mock_enabled, "replay") == mode


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        MarketHours().is_open(datetime(2025, 1, 6, 10, 0))


def test_configuration_is_checked_at_construction() -> None:
    with pytest.raises(ZoneInfoNotFoundError):
        MarketHours(tz="Mars/Olympus_Mons")
    with pytest.raises(ValueError):
        MarketHours(open=time(15, 30), close=time(9, 15))


def test_from_settings() -> None:
    settings = Settings(
        market_open=time(10, 0),
        market_close=time(11, 0),
        market_timezone="UTC",
        exchange_calendar="none",
    )
    hours = MarketHours.from_settings(settings)
    assert hours == MarketHours("UTC", time(10, 0), time(11, 0))
    assert hours.is_open(datetime(2025, 1, 6, 10, 30, tzinfo=UTC))
    assert not hours.is_open(datetime(2025, 1, 6, 11, 0, tzinfo=UTC))
