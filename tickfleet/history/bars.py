"""The fleet's own bars, built in the stream from every tick it publishes.

A stream sees every tick, so it keeps one open bar per token in memory: ``BarBuilder.add``
is one dictionary lookup and a few comparisons per tick, no I/O, beside the publisher's
``offer``. Streams read and write only Redis, so ``BarFlusher`` hands the bars that
changed to a Redis list every ``history_bar_flush_seconds`` (and once more when the stream
stops); a beat task (``bar_store.move_bars``) merges them into SQL.

A flushed bar is a *segment*: the bar as far as this stream saw it, open from its
earliest tick, close from its latest. Merging segments is idempotent and order-free (open
of the earliest tick, close and OI of the latest, high the max, low the min), so a bar
flushed twice, or begun by one stream worker and finished by another after a failover,
becomes one bar with every tick either worker published. A worker killed outright loses
what it saw since its last flush (at most ``history_bar_flush_seconds``); a stopped one
flushes first and loses nothing.

Volume: Kite's tick volume is the day's cumulative count, so a segment keeps the first
and the latest cumulative volume it saw; the store answers a bar's volume as its latest
cumulative volume less the previous bar's of the same day (or less its own first, for a
day's first bar).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson
import redis
import redis.asyncio as aioredis

log = logging.getLogger("tickfleet.history")

# A segment, as a list (one per token and bar, updated in place on every tick):
TOKEN, START, FIRST_TS, OPEN, HIGH, LOW, LAST_TS, CLOSE, VOLUME_FIRST, VOLUME_LAST, OI, MOCK = (
    range(12)
)
Segment = list[Any]
_TAKEN: Final = 12  # an open bar's last slot: the copy the last take returned

FOLD: Final = 64
"""Chain ticks whose prices wait before they fold into a chain's high and low: bounds the
memory of a chain ticking faster than it is taken (400 options: 200 kB)."""

KEEP_FLUSHES: Final = 3600
"""Flushes the Redis list keeps while nothing moves them to SQL (beat down): an hour at one
a second, then the oldest go first."""


def merge(a: Segment, b: Segment) -> Segment:
    """One bar from two segments of it, whatever their order (idempotent)."""
    early = a if a[FIRST_TS] <= b[FIRST_TS] else b
    latest = a if a[LAST_TS] >= b[LAST_TS] else b
    merged = list(a)
    merged[FIRST_TS], merged[OPEN] = early[FIRST_TS], early[OPEN]
    merged[LAST_TS], merged[CLOSE] = latest[LAST_TS], latest[CLOSE]
    merged[HIGH] = max(a[HIGH], b[HIGH])
    merged[LOW] = min(a[LOW], b[LOW])
    merged[VOLUME_FIRST] = _either(min, a[VOLUME_FIRST], b[VOLUME_FIRST])
    merged[VOLUME_LAST] = _either(max, a[VOLUME_LAST], b[VOLUME_LAST])
    other = a if latest is b else b
    merged[OI] = latest[OI] if latest[OI] is not None else other[OI]
    merged[MOCK] = bool(a[MOCK]) or bool(b[MOCK])
    return merged


def _either(pick: Any, x: Any, y: Any) -> Any:
    if x is None:
        return y
    return x if y is None else pick(x, y)


def collapse(
    segments: Iterable[Segment], bars: dict[tuple[int, int], Segment] | None = None
) -> dict[tuple[int, int], Segment]:
    """Segments merged per bar (into ``bars`` when given)."""
    bars = {} if bars is None else bars
    for segment in segments:
        key = (int(segment[TOKEN]), int(segment[START]))
        known = bars.get(key)
        bars[key] = segment if known is None else merge(known, segment)
    return bars


Column = npt.NDArray[Any]


class ChainBars:
    """One chain's bars of one start, from whole-chain arrays: the simulated book prices a
    whole chain at one time into arrays that it never changes afterwards, so a chain tick
    costs its bars a few references and one append (``bench/bars.py``: beside the tick
    path, even one NumPy call a chain costs microseconds in a cold cache). The prices
    wait in a list and fold into high and low ``FOLD`` chains at a time, or when taken.
    Every token of the chain begins at the same tick, so one first and one last time
    serve them all; a chain whose tokens change begins new ``ChainBars``, and its old
    segments merge with the new ones like any two."""

    __slots__ = (
        "changed", "close", "first_ts", "high", "last_ts", "low", "mock", "oi", "open",
        "start", "tokens", "volume_first", "volume_last", "waiting",
    )  # fmt: skip

    def __init__(
        self, tokens: Sequence[int], start: float, ts: float, prices: Column,
        volumes: Column, ois: Column, mock: bool,
    ) -> None:  # fmt: skip
        self.tokens, self.start, self.mock = tokens, start, mock
        self.first_ts = self.last_ts = ts
        self.open = self.high = self.low = self.close = prices
        self.volume_first = self.volume_last = volumes
        self.oi = ois
        self.waiting: list[Column] = []
        self.changed = True

    def add(self, ts: float, prices: Column, volumes: Column, ois: Column) -> None:
        waiting = self.waiting
        waiting.append(prices)
        if len(waiting) >= FOLD:
            self.fold()
        self.close, self.volume_last, self.oi, self.last_ts = prices, volumes, ois, ts
        self.changed = True

    def fold(self) -> None:
        """The waiting prices into high and low (new arrays: the old may be shared)."""
        if self.waiting:
            stacked = np.stack(self.waiting)
            self.high = np.maximum(self.high, stacked.max(axis=0))
            self.low = np.minimum(self.low, stacked.min(axis=0))
            self.waiting = []

    def segments(self) -> list[Segment]:
        self.fold()
        columns = zip(
            self.tokens, repeat(self.start), repeat(self.first_ts), self.open.tolist(),
            self.high.tolist(), self.low.tolist(), repeat(self.last_ts), self.close.tolist(),
            self.volume_first.tolist(), self.volume_last.tolist(), self.oi.tolist(),
            repeat(self.mock),
        )  # fmt: skip
        self.changed = False
        return [list(row) for row in columns]


class BarBuilder:
    """One open bar per token, of ``length`` seconds since the epoch (market offsets are
    whole minutes, so bars start on the market's minutes too).

    ``add`` runs for every tick, so it does the least it can (``bench/bars.py``): the
    bar's start is computed once per distinct tick time (a chain or a frame shares one),
    and the open bars of that start are kept apart, so a tick finds its bar in one lookup
    with no check of the bar's start (a token missing there begins or resumes its bar);
    what changed since the last ``take`` is found by ``take`` comparing each open bar with
    the copy it took last, not marked per tick. ``is_mock`` and the first volume are the
    opening tick's (a segment's; merged segments: any simulated, the lowest volume).
    """

    def __init__(self, length: float) -> None:
        self._length = length
        self._open: dict[int, Segment] = {}
        self._current: dict[int, Segment] = {}  # the open bars that start at ``_start``
        self._closed: list[Segment] = []  # replaced by a newer bar before a take
        self._chain: ChainBars | None = None
        self._ts = -1.0
        self._start = -1.0

    def add(
        self, token: int, ts: float, price: float, volume: int | None, oi: int | None, mock: bool
    ) -> None:
        """One published tick.

        The slots are literal numbers here (``HIGH`` is 4, ...): a module constant is a
        global lookup per use, and this body runs for every tick (a unit test keeps the
        numbers equal to the names).
        """
        if ts != self._ts:
            self._at(ts)
        try:
            bar = self._current[token]
        except KeyError:  # the token's first tick of this bar start
            self._begin(token, ts, price, volume, oi, mock)
            return
        if price > bar[4]:  # HIGH
            bar[4] = price
        elif price < bar[5]:  # LOW
            bar[5] = price
        bar[6] = ts  # LAST_TS
        bar[7] = price  # CLOSE
        if volume is not None:
            bar[9] = volume  # VOLUME_LAST
        if oi is not None:
            bar[10] = oi  # OI

    def _at(self, ts: float) -> None:
        """A new tick time; a new bar start, too, leaves every token to ``_begin`` again."""
        start = ts - ts % self._length
        if start != self._start:
            self._start, self._current = start, {}
        self._ts = ts

    def _begin(
        self, token: int, ts: float, price: float, volume: int | None, oi: int | None, mock: bool
    ) -> None:
        """The token's bar of ``_start``: its open bar if that one starts there (ticks went
        back and forth across a bar boundary), else a new bar in place of the open one."""
        bar = self._open.get(token)
        if bar is not None and bar[START] == self._start:
            self._current[token] = bar
            self.add(token, ts, price, volume, oi, mock)
            return
        start = self._start
        self._roll(
            token, bar,
            [token, start, ts, price, price, price, ts, price, volume, volume, oi, mock, None],
        )  # fmt: skip

    def _roll(self, token: int, old: Segment | None, new: Segment) -> None:
        if old is not None and old[:_TAKEN] != old[_TAKEN]:
            self._closed.append(old[:_TAKEN])
        self._open[token] = self._current[token] = new

    def add_chain(
        self, tokens: Sequence[int], ts: float, prices: Column, volumes: Column, ois: Column,
        mock: bool,
    ) -> None:  # fmt: skip
        """One tick of every token of a chain at ``ts``, as arrays in the order of
        ``tokens``. The arrays are kept as they are: the caller must never change them."""
        start = ts - ts % self._length
        chain = self._chain
        if (
            chain is not None
            and chain.start == start
            and (chain.tokens is tokens or chain.tokens == tokens)
        ):
            chain.add(ts, prices, volumes, ois)
            return
        if chain is not None and chain.changed:
            self._closed.extend(chain.segments())
        self._chain = ChainBars(tokens, start, ts, prices, volumes, ois, mock)

    def forget(self, tokens: Iterable[int]) -> None:
        """Stop keeping bars of ``tokens`` (no longer streamed: expired, unassigned). What
        their bars gained since the last take still goes out with the next one; without
        this a stream would keep a bar for every token it ever streamed."""
        tokens = set(tokens)
        chain = self._chain
        if chain is not None and not tokens.isdisjoint(chain.tokens):
            self._chain = None  # the chain's next tick begins new bars of what is left
            if chain.changed:
                self._closed.extend(chain.segments())
        for token in tokens:
            self._current.pop(token, None)
            bar = self._open.pop(token, None)
            if bar is not None and bar[:_TAKEN] != bar[_TAKEN]:
                self._closed.append(bar[:_TAKEN])

    def take(self) -> list[Segment]:
        """Every bar changed since the last take, as copies (the open ones keep growing)."""
        taken, self._closed = self._closed, []
        if self._chain is not None and self._chain.changed:
            taken.extend(self._chain.segments())
        for bar in self._open.values():
            segment = bar[:_TAKEN]
            if segment != bar[_TAKEN]:
                bar[_TAKEN] = segment
                taken.append(segment)
        return taken

    def __len__(self) -> int:
        return len(self._open)


class BarFlusher:
    """Hands a builder's changed bars to Redis: every ``interval`` seconds, and at the end.

    A flush that fails (Redis unreachable) keeps its segments for the next one: a segment is
    the bar so far, so the next take carries the same bars further and nothing is lost.
    """

    def __init__(
        self, builder: BarBuilder, client: aioredis.Redis, key: str, interval: float
    ) -> None:
        self.builder = builder
        self._client = client
        self._key = key
        self._interval = interval
        self._pending: dict[tuple[int, int], Segment] = {}
        self.flushed = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> int:
        """Push what changed as one list element; returns how many bars went out."""
        collapse(self.builder.take(), self._pending)  # a chain's and a tick's of one bar
        if not self._pending:
            return 0
        segments = list(self._pending.values())
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.rpush(self._key, orjson.dumps(segments))
                pipe.ltrim(self._key, -KEEP_FLUSHES, -1)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            log.warning("bars: %d not flushed, kept for the next flush: %s", len(segments), exc)
            return 0
        self._pending = {}
        self.flushed += len(segments)
        return len(segments)

    async def close(self) -> None:
        """The last flush, when the stream stops (bounded: a stop must not hang on it)."""
        try:
            async with asyncio.timeout(max(1.0, self._interval)):
                await self.flush()
        except TimeoutError:
            log.warning("bars: the last flush timed out")
