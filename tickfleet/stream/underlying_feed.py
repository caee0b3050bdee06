"""The simulated index: the single writer of the market's versioned snapshots.

Every tick makes one new immutable snapshot, publishes it in process (``SnapshotCell``)
and as one atomic value in Redis (a script that refuses older versions), then sends the
index tick. Account streams on any host read that value; nobody ever locks.

A new writer resumes from the stored snapshot, else from the last index tick consumers
received (the publish target may have outlived the fleet's Redis), else it starts at the
configured price with the clock's milliseconds as its first version: versions then keep
rising across any restart, since a writer never ticks faster than once a millisecond.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import redis.asyncio as aioredis

from tickfleet.clock import Clock
from tickfleet.market.snapshot import (
    MockUnderlyingSnapshot,
    RedisSnapshotStore,
    SnapshotCell,
    UnderlyingBuilder,
    WalkSpec,
)
from tickfleet.market.ticks import underlying_tick
from tickfleet.names import Channels
from tickfleet.stream.publisher import TickPublisher
from tickfleet.stream.status import StreamStatus

log = logging.getLogger("tickfleet.stream")


class UnderlyingFeed:
    def __init__(
        self,
        spec: WalkSpec,
        start_price: float,
        store: RedisSnapshotStore,
        publisher: TickPublisher,
        channels: Channels,
        status: StreamStatus,
        clock: Clock,
        rng: np.random.Generator,
        target: aioredis.Redis,
    ) -> None:
        self._spec = spec
        self._start_price = start_price
        self._store = store
        self._publisher = publisher
        self._channels = channels
        self._status = status
        self._clock = clock
        self._rng = rng
        self._target = target
        self._tz = ZoneInfo(spec.tz)
        self.cell = SnapshotCell()
        self._builder: UnderlyingBuilder | None = None

    async def _resume(self) -> UnderlyingBuilder:
        """Continue from the last snapshot (see the module docstring for where it comes from)."""
        last = await asyncio.to_thread(self._store.read) or await self._last_published()
        if last is None:
            first = int(self._clock.time() * 1000)
            log.info("underlying starts at %.2f, version %d", self._start_price, first + 1)
            return UnderlyingBuilder(self._spec, self._start_price, version=first)
        log.info("underlying resumes from v%d at %.2f", last.version, last.price)
        return UnderlyingBuilder.resume(self._spec, last)

    async def _last_published(self) -> MockUnderlyingSnapshot | None:
        """The index tick consumers last received, as a snapshot (None when there is none)."""
        raw = await self._target.hget(self._channels.latest_underlying, self._spec.symbol)
        if raw is None:
            return None
        tick = orjson.loads(raw)
        price = float(tick["last_price"])
        ts = tick.get("ts")
        return MockUnderlyingSnapshot(
            version=int(tick["version"]),
            symbol=self._spec.symbol,
            price=price,
            open=float(tick.get("open", price)),
            high=float(tick.get("high", price)),
            low=float(tick.get("low", price)),
            close=float(tick.get("prev_close", price)),
            volume=int(tick.get("volume", 0)),
            ts=float(ts) if isinstance(ts, int | float) else self._clock.time(),
        )

    async def tick(self) -> None:
        if self._builder is None:
            self._builder = await self._resume()
        now = datetime.fromtimestamp(self._clock.time(), self._tz)
        snapshot = self._builder.next(now, self._rng)
        if not await asyncio.to_thread(self._store.write, snapshot):
            log.warning("a newer snapshot is in Redis: another writer ran; resuming from it")
            self._builder = None
            return
        self.cell.publish(snapshot)
        payload = orjson.dumps(underlying_tick(snapshot, self._tz))
        self._publisher.offer(
            self._channels.underlying, self._channels.latest_underlying, snapshot.symbol, payload
        )
        self._status.last_tick_at = self._clock.time()
