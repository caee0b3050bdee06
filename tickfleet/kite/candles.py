"""Candles and their intervals, as Kite's historical API names and limits them.

Kite answers one request with at most so many days of candles, a limit that grows with
the bar (60 days of minute bars, 2000 of day bars: Zerodha's documented caps). A range
over the limit is refused here, before any request is spent on it: Kite allows three
historical requests a second per api key, and a refusal would cost one of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

KITE_TIMEZONE: Final = ZoneInfo("Asia/Kolkata")
"""Kite reads ``from``/``to`` and stamps candles in exchange time."""


class Interval(StrEnum):
    """Kite's candle intervals, by the names its URL takes."""

    MINUTE = "minute"
    MINUTE_3 = "3minute"
    MINUTE_5 = "5minute"
    MINUTE_10 = "10minute"
    MINUTE_15 = "15minute"
    MINUTE_30 = "30minute"
    MINUTE_60 = "60minute"
    DAY = "day"

    @property
    def bar(self) -> timedelta:
        """How long one candle lasts."""
        return _BARS[self]

    @property
    def max_days(self) -> int:
        """The longest range, in days, Kite answers in one request at this interval."""
        return _MAX_DAYS[self]

    @property
    def max_range(self) -> timedelta:
        return timedelta(days=self.max_days)


_BARS: Final[Mapping[Interval, timedelta]] = {
    Interval.MINUTE: timedelta(minutes=1),
    Interval.MINUTE_3: timedelta(minutes=3),
    Interval.MINUTE_5: timedelta(minutes=5),
    Interval.MINUTE_10: timedelta(minutes=10),
    Interval.MINUTE_15: timedelta(minutes=15),
    Interval.MINUTE_30: timedelta(minutes=30),
    Interval.MINUTE_60: timedelta(hours=1),
    Interval.DAY: timedelta(days=1),
}

# Zerodha's caps per request (Kite Connect forum, "Historical API frequency and limit on
# number of candles fetched"; repeated in its historical data FAQ).
_MAX_DAYS: Final[Mapping[Interval, int]] = {
    Interval.MINUTE: 60,
    Interval.MINUTE_3: 100,
    Interval.MINUTE_5: 100,
    Interval.MINUTE_10: 100,
    Interval.MINUTE_15: 200,
    Interval.MINUTE_30: 200,
    Interval.MINUTE_60: 400,
    Interval.DAY: 2000,
}


class CandleError(ValueError):
    """A candle Kite sent, or the cache holds, that cannot be read."""


class RangeError(ValueError):
    """A range no request can be made for: it ends before it starts, or is not zoned."""


class RangeTooLargeError(RangeError):
    """A range longer than Kite answers in one request at its interval."""

    def __init__(self, interval: Interval, start: datetime, end: datetime) -> None:
        self.interval = interval
        self.limit_days = interval.max_days
        super().__init__(
            f"{interval.value} candles are served at most {interval.max_days} days per "
            f"request; {start.isoformat()} to {end.isoformat()} is {_days(end - start)} days"
        )


@dataclass(frozen=True, slots=True)
class CandleQuery:
    """Which candles: one instrument, a range (both ends included, as Kite reads them),
    an interval; ``continuous`` stitches expired futures contracts, ``oi`` adds open
    interest."""

    token: int
    start: datetime
    end: datetime
    interval: Interval
    continuous: bool = False
    oi: bool = False

    def check(self) -> None:
        """RangeError unless Kite would answer this range in one request."""
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise RangeError("a range needs zoned ends (an offset or a timezone)")
        if self.end < self.start:
            raise RangeError(f"the range ends ({self.end}) before it starts ({self.start})")
        if self.end - self.start > self.interval.max_range:
            raise RangeTooLargeError(self.interval, self.start, self.end)

    def closed(self, now: float) -> bool:
        """Whether every candle of the range had closed at ``now`` (epoch seconds): the
        last one starts at ``end`` at the latest and lasts one bar."""
        return (self.end + self.interval.bar).timestamp() <= now


@dataclass(frozen=True, slots=True)
class Candle:
    """One bar: its start in the market's timezone, prices in rupees, volume and OI in
    contracts (shares for equities); ``oi`` only when asked for."""

    date: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None = None

    @classmethod
    def from_kite(cls, record: Mapping[str, object], tz: ZoneInfo) -> Candle:
        """A record as the official client's ``historical_data`` returns it (``date``
        parsed, fixed offset), its date moved to ``tz``."""
        when = record.get("date")
        if not isinstance(when, datetime) or when.tzinfo is None:
            raise CandleError(f"a candle without a zoned date: {record!r}")
        oi = record.get("oi")
        return cls(
            when.astimezone(tz),
            _price(record, "open"),
            _price(record, "high"),
            _price(record, "low"),
            _price(record, "close"),
            _count(record.get("volume"), "volume"),
            None if oi is None else _count(oi, "oi"),
        )

    def to_row(self) -> list[object]:
        """Kite's wire shape, ``[date, open, high, low, close, volume(, oi)]``, with an
        ISO date: what the cache keeps."""
        row: list[object] = [
            self.date.isoformat(), self.open, self.high, self.low, self.close, self.volume,
        ]  # fmt: skip
        if self.oi is not None:
            row.append(self.oi)
        return row

    @classmethod
    def from_row(cls, row: Sequence[object], tz: ZoneInfo) -> Candle:
        """The inverse of ``to_row``; reads Kite's own rows too (``+0530`` offsets)."""
        if len(row) not in (6, 7) or not isinstance(row[0], str):
            raise CandleError(f"not a candle row: {row!r}")
        try:
            when = datetime.fromisoformat(row[0])
        except ValueError:
            raise CandleError(f"a candle's date is not ISO 8601: {row[0]!r}") from None
        names = ("date", "open", "high", "low", "close", "volume", "oi")
        return cls.from_kite({**dict(zip(names, row, strict=False)), "date": when}, tz)


def _days(span: timedelta) -> str:
    return f"{span / timedelta(days=1):g}"


def _price(record: Mapping[str, object], name: str) -> float:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CandleError(f"a candle's {name} is not a number: {record!r}")
    return float(value)


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise CandleError(f"a candle's {name} is not a whole number: {value!r}")
    return int(value)
