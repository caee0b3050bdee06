"""The tick payloads of both channels: one builder each, shared by every feed.

The consumers of the service tickfleet replaces read these channels. Every field it
published keeps its name, type and meaning: ``token``, ``symbol`` (the underlying's
name, ``NIFTY``), ``type``, ``price``, ``ts`` (integer epoch seconds), the underlying's
``close`` (the current price), ``segment``, ``exchange``, ``lot_size``, ``tick_size``,
and ``depth`` with the total quantities when the feed has them (full mode, live or
simulated, in one shape). tickfleet's own fields
ride along: ``instrument_token``, ``tradingsymbol``, ``instrument_type``,
``last_price``, IV and greeks, ``timestamp`` (ISO 8601 with the market's offset),
``is_mock``, ``prev_close`` and ``version``. The README's table lists every field with
its unit and who relies on it. Simulated and live feeds build through these two
builders only, so the contract cannot drift between modes.

An option's identity (token, symbols, strike, expiry, segment, lot and tick size) never
changes between ticks, so ``OptionPayload`` serialises it once, when a feed starts
streaming the contract, and each tick serialises only what moves and splices the two:
the superset payload then costs about what the old, smaller one did.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from typing import NamedTuple

import orjson

from tickfleet.market.contracts import ListedInstrument

DepthLevel = tuple[int, float, int]
"""One market depth entry: quantity, price, orders."""

Depth = tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]]
"""The bid entries (best first), then the offer entries (best first): five each from Kite."""

BookJson = bytes
"""A full-mode tick's ``"depth":...,"total_buy_quantity":...,"total_sell_quantity":...``
members already written as JSON, the depth in ``Depth``'s shape (the simulated book writes a
chain's at once: ``tickfleet.stream.feeds.simulated.depth_json``)."""


class Stamp(NamedTuple):
    """The time of a tick as both channels publish it; made once for a whole chain tick."""

    ts: int  # epoch seconds
    timestamp: str  # ISO 8601 with the market's offset, milliseconds

    @classmethod
    def of(cls, epoch_seconds: float, tz: tzinfo) -> Stamp:
        return cls(int(epoch_seconds), iso_timestamp(epoch_seconds, tz))


class IndexQuote(NamedTuple):
    """What moves in an index tick (one a second: no need to spare the object)."""

    last_price: float
    open: float
    high: float
    low: float
    prev_close: float | None
    volume: int
    version: int
    is_mock: bool


@lru_cache(maxsize=256)
def iso_timestamp(epoch_seconds: float, tz: tzinfo) -> str:
    """``2025-01-07T15:29:59.250+05:30`` for the given zone.

    Cached: every option of one chain tick shares its timestamp, and formatting it was
    a third of the cost of serialising a tick.
    """
    return datetime.fromtimestamp(epoch_seconds, tz).isoformat(timespec="milliseconds")


def _depth(depth: Depth) -> dict[str, list[dict[str, float | int]]]:
    buy, sell = depth
    return {
        side: [{"quantity": q, "price": p, "orders": o} for q, p, o in levels]
        for side, levels in (("buy", buy), ("sell", sell))
    }


class OptionPayload:
    """The option ticks of one contract: its identity serialised once, then per tick."""

    __slots__ = ("_head", "token")

    def __init__(self, contract: ListedInstrument) -> None:
        self.token = contract.instrument_token
        kind = contract.instrument_type
        fixed = {
            "token": self.token,
            "instrument_token": self.token,
            "symbol": contract.underlying,
            "tradingsymbol": contract.tradingsymbol,
            "type": kind,
            "instrument_type": kind,
            "strike": float(contract.strike),
            "expiry": contract.expiry.isoformat() if contract.expiry else None,
            "segment": contract.segment,
            "exchange": contract.exchange,
            "lot_size": contract.lot_size,
            "tick_size": contract.tick_size,
        }
        self._head = orjson.dumps(fixed)[:-1] + b","

    def tick(
        self,
        stamp: Stamp,
        last_price: float,
        volume: int | None,
        oi: int | None,
        iv: float | None,
        delta: float | None,
        gamma: float | None,
        theta: float | None,
        vega: float | None,
        version: int,
        is_mock: bool,
        prev_close: float | None = None,
        depth: Depth | None = None,
        total_buy_quantity: int | None = None,
        total_sell_quantity: int | None = None,
        book: BookJson | None = None,
    ) -> bytes:
        """One option tick. ``iv`` and the greeks are None when they cannot be computed
        (an implied volatility that does not solve); ``theta`` is per calendar day,
        ``vega`` per volatility point. ``depth`` comes with full-mode ticks, the totals
        with quote- and full-mode ticks (live, and simulated from its book); ``book``, when
        given, is the depth and the totals already written (they are not given then)."""
        moving: dict[str, object] = {
            "price": last_price,
            "last_price": last_price,
            "volume": volume,
            "oi": oi,
            "iv": iv,
            "delta": delta,
            "gamma": gamma,
            "theta": theta,
            "vega": vega,
            "prev_close": prev_close,
            "ts": stamp.ts,
            "timestamp": stamp.timestamp,
            "version": version,
            "is_mock": is_mock,
        }
        if book is not None:  # one join: no copy of the members through orjson
            return b"".join((self._head, orjson.dumps(moving)[1:-1], b",", book, b"}"))
        moving["depth"] = None if depth is None else _depth(depth)
        moving["total_buy_quantity"] = total_buy_quantity
        moving["total_sell_quantity"] = total_sell_quantity
        return self._head + orjson.dumps(moving)[1:]


def index_tick(
    symbol: str, tradingsymbol: str, token: int, quote: IndexQuote, stamp: Stamp
) -> bytes:
    """The underlying channel's tick; ``symbol`` is the underlying's name (``NIFTY``)."""
    price = round(quote.last_price, 2)
    prev = round(quote.prev_close, 2) if quote.prev_close is not None else None
    return orjson.dumps(
        {
            "symbol": symbol,
            "tradingsymbol": tradingsymbol,
            "token": token,
            "instrument_token": token,
            "close": price,
            "price": price,
            "last_price": price,
            "open": round(quote.open, 2),
            "high": round(quote.high, 2),
            "low": round(quote.low, 2),
            "prev_close": prev,
            "change": round(price - prev, 2) if prev is not None else None,
            "volume": quote.volume,
            "ts": stamp.ts,
            "timestamp": stamp.timestamp,
            "version": quote.version,
            "is_mock": quote.is_mock,
        }
    )
