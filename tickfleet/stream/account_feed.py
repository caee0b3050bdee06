"""An account's simulated option feed: its assigned tokens, priced on every tick.

The token set follows the assignment incrementally: added tokens are looked up and
added to the book, removed ones forgotten, and everything else keeps ticking, so a
change never restarts the stream or leaves a gap on unchanged tokens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import redis.asyncio as aioredis

from tickfleet.assignment import Assignment
from tickfleet.clock import Clock
from tickfleet.market.options import MockOptionBook, OptionContract
from tickfleet.market.snapshot import MockUnderlyingSnapshot
from tickfleet.market.ticks import to_tick
from tickfleet.names import Channels, Keys
from tickfleet.stream.publisher import TickPublisher
from tickfleet.stream.status import StreamStatus

log = logging.getLogger("tickfleet.stream")

ContractLookup = Callable[[Collection[int]], list[OptionContract]]


class AccountFeed:
    def __init__(
        self,
        account_id: str,
        book: MockOptionBook,
        client: aioredis.Redis,
        keys: Keys,
        channels: Channels,
        publisher: TickPublisher,
        status: StreamStatus,
        lookup: ContractLookup,
        clock: Clock,
        rng: np.random.Generator,
        tz: str,
    ) -> None:
        self.account_id = account_id
        self.book = book
        self._client = client
        self._keys = keys
        self._channels = channels
        self._publisher = publisher
        self._status = status
        self._lookup = lookup
        self._clock = clock
        self._rng = rng
        self._tz = ZoneInfo(tz)
        self.tokens: set[int] = set()
        self.assignment_version = -1
        self._day: date | None = None

    async def sync_assignment(self) -> None:
        """Read the current assignment and apply it if it is newer than ours."""
        raw = await self._client.get(self._keys.assignment)
        assignment = Assignment.from_dict(orjson.loads(raw)) if raw else Assignment()
        if assignment.version != self.assignment_version:
            await self.apply(assignment)

    async def apply(self, assignment: Assignment) -> None:
        wanted = set(assignment.tokens_for(self.account_id))
        added, removed = wanted - self.tokens, self.tokens - wanted
        if added:
            self.book.ensure(await asyncio.to_thread(self._lookup, added))
        if removed:
            self.book.forget(removed)
        self.tokens = wanted
        self.assignment_version = assignment.version
        self._status.tokens = len(wanted)
        if added or removed:
            log.info(
                "stream account:%s applied assignment v%d: +%d -%d tokens (%d total)",
                self.account_id,
                assignment.version,
                len(added),
                len(removed),
                len(wanted),
            )

    def forget(self, tokens: Collection[int]) -> None:
        self.book.forget(tokens)
        self.tokens -= set(tokens)
        self._status.tokens = len(self.tokens)

    async def tick(self) -> None:
        raw = await self._client.get(self._keys.market_snapshot)
        if raw is None:
            return  # the underlying stream has not written a snapshot yet
        now = datetime.fromtimestamp(self._clock.time(), self._tz)
        self._evict_on_new_day(now.date())
        states = self.book.tick(MockUnderlyingSnapshot.from_json(raw), now, self._rng)
        channel, latest = self._channels.options, self._channels.latest_options
        for state in states:
            payload = orjson.dumps(to_tick(state, self._tz))
            self._publisher.offer(channel, latest, str(state.instrument_token), payload)
        if states:
            self._status.last_tick_at = self._clock.time()

    def _evict_on_new_day(self, today: date) -> None:
        if self._day != today:
            self._day = today
            self.book.evict_expired(today)
