"""Tick dictionaries as published on the ``<prefix>:options`` and ``:underlying`` channels.

Timestamps are ISO 8601 strings with the market's UTC offset (``+05:30``) and
millisecond precision: readable in a log, unambiguous for any consumer, and sortable
as text within one market. Prices are rounded to what the exchange shows; greeks to
precision a consumer can use. The publisher serialises these dicts with orjson.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from functools import lru_cache

from tickfleet.market.contracts import MockOptionSnapshot
from tickfleet.market.snapshot import MockUnderlyingSnapshot

TickValue = str | int | float | bool
Tick = dict[str, TickValue]


@lru_cache(maxsize=256)
def iso_timestamp(epoch_seconds: float, tz: tzinfo) -> str:
    """``2025-01-07T15:29:59.250+05:30`` for the given zone.

    Cached: every option of one chain tick shares its timestamp, and formatting it was
    a third of the cost of serialising a tick.
    """
    return datetime.fromtimestamp(epoch_seconds, tz).isoformat(timespec="milliseconds")


@lru_cache(maxsize=64)
def _iso_date(day: date) -> str:
    return day.isoformat()


def to_tick(opt: MockOptionSnapshot, tz: tzinfo) -> Tick:
    """The option tick: every field the design lists, ``is_mock`` always true.

    Values are published as the book rounded them (prices to the paisa, greeks to the
    precision a consumer can use), so this is a plain, cheap copy per tick.
    """
    return {
        "instrument_token": opt.instrument_token,
        "tradingsymbol": opt.tradingsymbol,
        "instrument_type": opt.instrument_type,
        "strike": opt.strike,
        "expiry": _iso_date(opt.expiry),
        "last_price": opt.last_price,
        "volume": opt.volume,
        "oi": opt.oi,
        "iv": opt.iv,
        "delta": opt.delta,
        "gamma": opt.gamma,
        "theta": opt.theta,
        "vega": opt.vega,
        "timestamp": iso_timestamp(opt.timestamp, tz),
        "is_mock": True,
    }


def underlying_tick(snap: MockUnderlyingSnapshot, tz: tzinfo) -> Tick:
    """The index tick; ``last_price`` and ``version`` ride along with the listed fields."""
    return {
        "symbol": snap.symbol,
        "last_price": round(snap.price, 2),
        "open": round(snap.open, 2),
        "high": round(snap.high, 2),
        "low": round(snap.low, 2),
        "close": round(snap.close, 2),
        "volume": snap.volume,
        "ts": iso_timestamp(snap.ts, tz),
        "version": snap.version,
        "is_mock": snap.is_mock,
    }
