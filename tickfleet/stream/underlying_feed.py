"""The simulated index: the single writer of the market's versioned snapshots.

Every tick makes one new immutable snapshot, publishes it in process (``SnapshotCell``)
and as one atomic value in Redis (a script that refuses older versions), then sends the
index tick. Account streams on any host read that value; nobody ever locks.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from tickfleet.clock import Clock
from tickfleet.market.snapshot import (
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
    ) -> None:
        self._spec = spec
        self._start_price = start_price
        self._store = store
        self._publisher = publisher
        self._channels = channels
        self._status = status
        self._clock = clock
        self._rng = rng
        self._tz = ZoneInfo(spec.tz)
        self.cell = SnapshotCell()
        self._builder: UnderlyingBuilder | None = None

    async def _resume(self) -> UnderlyingBuilder:
        """Continue from the last stored snapshot, so versions keep rising across failover."""
        last = await asyncio.to_thread(self._store.read)
        if last is None:
            return UnderlyingBuilder(self._spec, self._start_price)
        log.info("underlying resumes from snapshot v%d at %.2f", last.version, last.price)
        return UnderlyingBuilder.resume(self._spec, last)

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
