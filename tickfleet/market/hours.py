"""Market hours and the feed mode a stream should run in right now.

Only weekdays and the open/close times are known here; exchange holidays are not (no
holiday calendar is shipped). On a holiday the fleet therefore tries the live feed,
which simply stays silent; forcing ``TICKFLEET_FEED=mock`` gives a simulated market.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from tickfleet.settings import FeedMode, Settings

StreamMode = Literal["live", "mock", "idle"]
SATURDAY = 5


@dataclass(frozen=True, slots=True)
class MarketHours:
    """The regular session: ``open <= local time < close`` on Monday to Friday."""

    tz: str = "Asia/Kolkata"
    open: time = time(9, 15)
    close: time = time(15, 30)

    def __post_init__(self) -> None:
        ZoneInfo(self.tz)  # an unknown zone fails here, at start-up, not at the open
        if self.close <= self.open:
            raise ValueError("market close must be after market open")

    @classmethod
    def from_settings(cls, settings: Settings) -> MarketHours:
        return cls(settings.market_timezone, settings.market_open, settings.market_close)

    def local(self, now: datetime) -> datetime:
        """``now`` in the market's timezone; naive times are refused (host zone unknown)."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        return now.astimezone(ZoneInfo(self.tz))

    def is_open(self, now: datetime) -> bool:
        local = self.local(now)
        return local.weekday() < SATURDAY and self.open <= local.time() < self.close

    def feed_mode(
        self,
        now: datetime,
        override: FeedMode,
        has_credentials: bool,
        mock_enabled: bool,
    ) -> StreamMode:
        """What a stream should do now.

        ``live`` and ``mock`` overrides are obeyed as given: an operator who forces the
        live feed without credentials wants to see it fail, not a quiet simulation.
        Under ``auto`` the live feed runs in market hours when credentials exist; the
        simulation runs otherwise (also in market hours without credentials, which is
        what a developer's machine needs) when enabled; else the stream idles.
        """
        if override != "auto":
            return override
        if has_credentials and self.is_open(now):
            return "live"
        return "mock" if mock_enabled else "idle"
