"""Market hours: when the exchange trades, when a contract expires, and the feed mode.

A contract expires at the close of its expiry day: from that instant it is expired
everywhere (admission, eviction, instrument listings, the simulated market), so one
rule, ``last_expired_day``, decides it for every caller. Exchange holidays come from the
trading calendar, so on a holiday ``auto`` simulates instead of waiting for a live feed
that will stay silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tickfleet.config.stream_mode import FeedSetting, OffHours, StreamMode
from tickfleet.market.calendar import WEEKDAYS_ONLY, TradingCalendar, load_calendar

if TYPE_CHECKING:
    from tickfleet.config.settings import Settings


@dataclass(frozen=True, slots=True)
class MarketHours:
    """The regular session, ``open <= local time < close``, on the calendar's trading days."""

    tz: str = "Asia/Kolkata"
    open: time = time(9, 15)
    close: time = time(15, 30)
    calendar: TradingCalendar = WEEKDAYS_ONLY

    def __post_init__(self) -> None:
        ZoneInfo(self.tz)  # an unknown zone fails here, at start-up, not at the open
        if self.close <= self.open:
            raise ValueError("market close must be after market open")

    @classmethod
    def from_settings(cls, settings: Settings) -> MarketHours:
        return cls(
            settings.market_timezone,
            settings.market_open,
            settings.market_close,
            load_calendar(settings.exchange_calendar),
        )

    def local(self, now: datetime) -> datetime:
        """``now`` in the market's timezone; naive times are refused (host zone unknown)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        return now.astimezone(ZoneInfo(self.tz))

    def at(self, epoch_seconds: float) -> datetime:
        """An epoch instant (a clock reading) as a market-local datetime."""
        return datetime.fromtimestamp(epoch_seconds, ZoneInfo(self.tz))

    def is_open(self, now: datetime) -> bool:
        local = self.local(now)
        return self.calendar.is_trading_day(local.date()) and self.open <= local.time() < self.close

    def expiry_instant(self, expiry: date) -> datetime:
        """The instant a contract expiring on ``expiry`` stops trading: that day's close."""
        return datetime.combine(expiry, self.close, tzinfo=ZoneInfo(self.tz))

    def last_expired_day(self, now: datetime) -> date:
        """The latest expiry day whose contracts have expired at ``now``.

        Today's contracts once today's close has passed, else yesterday's: a contract is
        expired exactly when its expiry day is on or before this day.
        """
        local = self.local(now)
        return local.date() if local.time() >= self.close else local.date() - timedelta(days=1)

    def is_expired(self, expiry: date | None, now: datetime) -> bool:
        return expiry is not None and expiry <= self.last_expired_day(now)

    def feed_mode(
        self,
        now: datetime,
        override: FeedSetting,
        has_credentials: bool,
        mock_enabled: bool,
        off_hours: OffHours = "mock",
    ) -> StreamMode:
        """What a stream should do now.

        ``live`` and ``mock`` overrides are obeyed as given: an operator who forces the
        live feed without credentials wants to see it fail, not a quiet simulation.
        Under ``auto`` the live feed runs in market hours of a trading day when
        credentials exist; the simulation runs otherwise (also in market hours without
        credentials, which is what a developer's machine needs) when enabled; else the
        stream idles. ``off_hours="replay"`` replays the last recorded session instead
        while the market is closed (in market hours without credentials it simulates as
        before: a replay then would pass old prices off as the day's).
        """
        if override != "auto":
            return override
        is_open = self.is_open(now)
        if has_credentials and is_open:
            return "live"
        if off_hours == "replay" and not is_open:
            return "replay"
        return "mock" if mock_enabled else "idle"
