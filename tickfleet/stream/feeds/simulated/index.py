"""The simulated index: the single writer of the market's versioned snapshots.

Every tick makes one new immutable snapshot, stores it as one atomic value in Redis (a
script that refuses older versions), then sends the index tick. Account streams on any
host read that value; nobody ever locks.

A new writer resumes from the stored snapshot, else from the last index tick consumers
received (the publish target may have outlived the fleet's Redis), else it starts at
Kite's last price (when an account has a session) or the configured price, with the
clock's milliseconds as its first version: versions then keep rising across any
restart, since a writer never ticks faster than once a millisecond.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import NamedTuple

import orjson

from tickfleet.assignment.plan import Assignment
from tickfleet.market.snapshot import (
    MockUnderlyingSnapshot,
    RedisSnapshotStore,
    UnderlyingBuilder,
    WalkSpec,
)
from tickfleet.stream.feeds.simulated.pacing import Simulation, tick_forever
from tickfleet.stream.feeds.simulated.seed import SeedPrice
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.status import StreamStatus
from tickfleet.ticks.payloads import IndexQuote, Stamp, index_tick

log = logging.getLogger("tickfleet.stream")

LastPublished = Callable[[], Awaitable[bytes | str | None]]


class Index(NamedTuple):
    """How the index is named on the wire: underlying name, trading symbol, token."""

    underlying: str
    tradingsymbol: str
    token: int


class SimulatedIndex:
    """The ``Feed`` of the underlying stream outside market hours (it has no tokens)."""

    def __init__(
        self,
        index: Index,
        spec: WalkSpec,
        start_price: float,
        seed: SeedPrice,
        snapshots: RedisSnapshotStore,
        last_published: LastPublished,
        outlet: Outlet,
        status: StreamStatus,
        simulation: Simulation,
        may_tick: Callable[[], bool],
    ) -> None:
        self._index = index
        self._spec = spec
        self._start_price = start_price
        self._seed = seed
        self._snapshots = snapshots
        self._last_published = last_published
        self._outlet = outlet
        self._status = status
        self._sim = simulation
        self._may_tick = may_tick
        self._builder: UnderlyingBuilder | None = None

    async def run(self) -> None:
        await tick_forever(self._sim.interval, self.tick, self._may_tick, self._status.stream)

    @property
    def excluded(self) -> Mapping[int, str]:
        """The index has no assigned tokens to leave out."""
        return {}

    async def apply(self, assignment: Assignment) -> None:
        """The index is always streamed, whatever the assignment."""

    def forget(self, tokens: Collection[int]) -> None:
        """The index never expires."""

    async def tick(self) -> None:
        if self._builder is None:
            self._builder = await self._resume()
        snapshot = self._builder.next(self._sim.now(), self._sim.rng)
        if not await self._snapshots.write(snapshot):
            log.warning("a newer snapshot is in Redis: another writer ran; resuming from it")
            self._builder = None
            return
        quote = IndexQuote(
            snapshot.price, snapshot.open, snapshot.high, snapshot.low, snapshot.close,
            snapshot.volume, snapshot.version, True,
        )  # fmt: skip
        index, stamp = self._index, Stamp.of(snapshot.ts, self._sim.tz)
        payload = index_tick(index.underlying, index.tradingsymbol, index.token, quote, stamp)
        self._outlet.index(
            index.underlying, payload, index.token, snapshot.ts, snapshot.price, snapshot.volume,
            True,
        )  # fmt: skip
        self._status.last_tick_at = self._sim.clock.time()

    async def _resume(self) -> UnderlyingBuilder:
        """Continue from the last snapshot (see the module docstring for where it comes from)."""
        last = await self._snapshots.read() or await self._from_last_tick()
        if last is None:
            first = int(self._sim.clock.time() * 1000)
            seeded = await self._seed()
            start = seeded or self._start_price
            source = "Kite's last price" if seeded else "the configured price"
            log.info("underlying starts at %.2f (%s), version %d", start, source, first + 1)
            return UnderlyingBuilder(self._spec, start, version=first)
        log.info("underlying resumes from v%d at %.2f", last.version, last.price)
        return UnderlyingBuilder.resume(self._spec, last)

    async def _from_last_tick(self) -> MockUnderlyingSnapshot | None:
        """The index tick consumers last received, as a snapshot (None when there is none)."""
        raw = await self._last_published()
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
            ts=float(ts) if isinstance(ts, int | float) else self._sim.clock.time(),
        )
