"""The live index: NIFTY 50 from Kite, on the underlying channel and in the market snapshot.

The underlying stream opens one Kite connection with its index account's session
(``accounts.config.index_accounts``) and streams the index token in full mode. Each tick
is published at once through the same builder as the simulated index's (``is_mock``
false) and becomes the market's next snapshot: the account streams read their index
level for the greeks from it, and when the market closes the simulation resumes from
where the real market left off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import tzinfo

from tickfleet.assignment.plan import Assignment
from tickfleet.kite.connection import ConnectionConfig
from tickfleet.kite.packets import Tick
from tickfleet.kite.pool import ConnectionPool
from tickfleet.market.snapshot import MockUnderlyingSnapshot, RedisSnapshotStore
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock
from tickfleet.stream.feeds.live.session import LiveSession, pool_connections
from tickfleet.stream.feeds.simulated.index import Index
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.status import StreamStatus
from tickfleet.ticks.payloads import IndexQuote, Stamp, index_tick

log = logging.getLogger("tickfleet.stream")


class LiveIndex:
    """The ``Feed`` of the underlying stream in market hours with a Kite session."""

    def __init__(
        self,
        index: Index,
        session: LiveSession,
        ticker_url: str,
        config: ConnectionConfig,
        snapshots: RedisSnapshotStore,
        outlet: Outlet,
        status: StreamStatus,
        clock: Clock,
        tz: tzinfo,
        metrics: Metrics,
    ) -> None:
        self._index = index
        self._session = session
        self._ticker_url = ticker_url
        self._snapshots = snapshots
        self._outlet = outlet
        self._status = status
        self._clock = clock
        self._tz = tz
        self._version = 0
        self._latest: MockUnderlyingSnapshot | None = None
        self._fresh = asyncio.Event()
        self.pool = ConnectionPool(
            "underlying", config, self.publish, clock, metrics, status.connections
        )

    async def run(self) -> None:
        stored = await self._snapshots.read()
        self._version = max(stored.version if stored else 0, int(self._clock.time() * 1000))
        self.pool.plan({0: {self._index.token: "full"}})
        writer = asyncio.create_task(self._write_snapshots(), name="live:snapshots")
        try:
            await self._session.run(pool_connections(self.pool, self._ticker_url))
        finally:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    @property
    def excluded(self) -> Mapping[int, str]:
        """The index has no assigned tokens to leave out."""
        return {}

    async def apply(self, assignment: Assignment) -> None:
        """The index is always streamed, whatever the assignment."""

    def forget(self, tokens: Collection[int]) -> None:
        """The index never expires."""

    def publish(self, ticks: Sequence[Tick]) -> None:
        """The index's ticks of one frame to the underlying channel (the connection calls it)."""
        index = self._index
        for tick in ticks:
            if tick.instrument_token == index.token:
                self._publish(tick)

    def _publish(self, tick: Tick) -> None:
        now = self._clock.time()
        self._version += 1
        price = tick.last_price
        quote = IndexQuote(
            price, tick.open or price, tick.high or price, tick.low or price, tick.close,
            0, self._version, False,
        )  # fmt: skip
        index = self._index
        payload = index_tick(
            index.underlying, index.tradingsymbol, index.token, quote, Stamp.of(now, self._tz)
        )
        self._outlet.index(index.underlying, payload, index.token, now, price, None, False)
        self._latest = MockUnderlyingSnapshot(
            self._version, index.tradingsymbol, price, quote.open, quote.high, quote.low,
            tick.close or price, 0, now, is_mock=False,
        )  # fmt: skip
        self._fresh.set()
        self._status.last_tick_at = now

    async def _write_snapshots(self) -> None:
        """Store the latest tick as the market snapshot (ticks in between are skipped)."""
        while True:
            await self._fresh.wait()
            self._fresh.clear()
            if self._latest is not None and not await self._snapshots.write(self._latest):
                log.warning("a newer market snapshot is stored: another writer is running")
