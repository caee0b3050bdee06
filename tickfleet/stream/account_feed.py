"""An account's simulated option feed: its assigned tokens, priced on every tick.

The token set follows the assignment incrementally: added tokens are looked up and
added to the book, removed ones forgotten, and everything else keeps ticking, so a
change never restarts the stream or leaves a gap on unchanged tokens.

The book holds at most ``MOCK_STATE_MAX_SIZE`` contracts. When more are assigned, the
feed chooses which to hold (those it already holds, then the lowest tokens) and reports
every other one as excluded, with its reason, in the stream's status, so ``/health``
names them; the moment room frees up (a token removed, a contract expired) the lowest
excluded tokens are taken in. The cap never silently stops an assigned token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from datetime import datetime
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
from tickfleet.stream.status import (
    EXCLUDED_EXPIRED,
    EXCLUDED_MOCK_CAP,
    EXCLUDED_NOT_SIMULATED,
    StreamStatus,
)

log = logging.getLogger("tickfleet.stream")

ContractLookup = Callable[[Collection[int]], list[OptionContract]]


class AccountFeed:
    def __init__(
        self,
        account_id: str,
        book: MockOptionBook,
        cap: int,
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
        self._cap = cap
        self._client = client
        self._keys = keys
        self._channels = channels
        self._publisher = publisher
        self._status = status
        self._lookup = lookup
        self._clock = clock
        self._rng = rng
        self._tz = ZoneInfo(tz)
        self.tokens: set[int] = set()  # assigned to this account
        self.applied: Assignment | None = None

    async def sync_assignment(self) -> None:
        """Read the current assignment and apply it if it is not the one applied.

        A missing assignment (an emptied Redis) is not an empty one: the feed keeps its
        tokens until the fleet saves an assignment again. Versions restart at 1 in an
        emptied Redis, so an assignment is known by its version and when it was saved.
        """
        raw = await self._client.get(self._keys.assignment)
        if raw is None:
            return
        assignment = Assignment.from_dict(orjson.loads(raw))
        if self.applied is None or not assignment.same_run(self.applied):
            await self.apply(assignment)

    async def apply(self, assignment: Assignment) -> None:
        wanted = set(assignment.tokens_for(self.account_id))
        added, removed = wanted - self.tokens, self.tokens - wanted
        if removed:
            self._drop(removed)
        self.tokens = wanted
        await self._fill()
        self.applied = assignment
        self._status.tokens = len(wanted)
        self._status.assignment_version = assignment.version
        self._status.assignment_saved_at = assignment.saved_at
        if added or removed:
            log.info(
                "stream account:%s applied assignment v%d: +%d -%d tokens (%d total, %d held)",
                self.account_id,
                assignment.version,
                len(added),
                len(removed),
                len(wanted),
                len(self.book),
            )

    def forget(self, tokens: Collection[int]) -> None:
        """Stop streaming ``tokens`` at once (evicted); the next assignment confirms it."""
        gone = set(tokens) & self.tokens
        self._drop(gone)
        self.tokens -= gone
        self._status.tokens = len(self.tokens)

    async def tick(self) -> None:
        raw = await self._client.get(self._keys.market_snapshot)
        if raw is None:
            return  # the underlying stream has not written a snapshot yet
        now = datetime.fromtimestamp(self._clock.time(), self._tz)
        states = self.book.tick(MockUnderlyingSnapshot.from_json(raw), now, self._rng)
        channel, latest = self._channels.options, self._channels.latest_options
        for state in states:
            payload = orjson.dumps(to_tick(state, self._tz))
            self._publisher.offer(channel, latest, str(state.instrument_token), payload)
        if states:
            self._status.last_tick_at = self._clock.time()
        expired = self.book.take_expired()
        if expired:
            self._exclude(expired, EXCLUDED_EXPIRED)
            await self._fill()

    def _drop(self, tokens: Collection[int]) -> None:
        self.book.forget(tokens)
        for token in tokens:
            self._status.excluded.pop(token, None)
        self._publisher.retract(self._channels.latest_options, [str(t) for t in tokens])

    def _exclude(self, tokens: Collection[int], reason: str) -> None:
        if not tokens:
            return
        self._status.excluded.update(dict.fromkeys(tokens, reason))
        self._publisher.retract(self._channels.latest_options, [str(t) for t in tokens])

    async def _fill(self) -> None:
        """Hold as many assigned tokens as the cap allows; report the rest as excluded."""
        excluded = self._status.excluded
        settled = {t for t, why in excluded.items() if why != EXCLUDED_MOCK_CAP}
        waiting = sorted(self.tokens - set(self.book.tokens) - settled)
        room = max(0, self._cap - len(self.book))
        taken = waiting[:room]
        if taken:
            contracts = await asyncio.to_thread(self._lookup, taken)
            self.book.ensure(contracts)
            simulated = {c.instrument_token for c in contracts}
            for token in taken:
                excluded.pop(token, None)
            self._exclude([t for t in taken if t not in simulated], EXCLUDED_NOT_SIMULATED)
        over = waiting[room:]
        newly = [t for t in over if excluded.get(t) != EXCLUDED_MOCK_CAP]
        if newly:
            self._exclude(newly, EXCLUDED_MOCK_CAP)
            log.warning(
                "stream account:%s: %d assigned tokens over MOCK_STATE_MAX_SIZE=%d are not "
                "simulated (see /health)",
                self.account_id,
                len(over),
                self._cap,
            )
