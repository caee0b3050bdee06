"""The fleet-wide breaker: local decisions at memory speed, agreement through Redis.

The hot path only touches memory (``LocalBreaker``). ``run`` keeps the worker in step on
the caller's event loop with two coroutines: a sync loop that writes batched outcomes and
local transitions with one Lua script per round (every ``sync_seconds``, or at once when
something changed), reads back the fleet's state and reserves half-open probes; and a
pub/sub listener that wakes it when another worker announces a transition. While the store
cannot be reached the worker breaks on its own, and merges back once it answers. No thread
and no sync client: a stream process is one event loop, and the breaker rides on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from tickfleet.breaker.local import LocalBreaker
from tickfleet.breaker.machine import Report, StoreView
from tickfleet.breaker.state import BreakerConfig, CircuitState
from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock
from tickfleet.runtime.lease import new_owner

logger = logging.getLogger("tickfleet.breaker")

T = TypeVar("T")

STORE_ERRORS = (redis.RedisError, OSError)  # OSError covers TimeoutError from ``_call``'s bound
CALL_TIMEOUT = 2.0
"""Bounds every script call, so a store that stops answering (no socket timeout on the
caller's client, a black-holed network) turns into "unreachable" instead of a stall."""
LISTEN_SECONDS = 5.0
"""How long one pub/sub read waits before the listener simply reads again."""


async def _call(awaitable: Awaitable[T], bound: float | None = CALL_TIMEOUT) -> T:
    """Await one redis-py call within ``bound`` seconds, never losing a cancellation.

    redis-py's asyncio client can swallow a ``CancelledError`` that lands at the wrong moment
    of a command, then return normally or raise a connection error instead (seen with 8.1;
    redis/redis-py#2028): the loops of ``run`` would go on forever. A cancellation requested
    during the call is raised whatever the call did.
    """
    task = asyncio.current_task()
    requested = task.cancelling() if task is not None else 0
    try:
        async with asyncio.timeout(bound):
            result = await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        _raise_if_cancelled(task, requested, error)
        raise
    _raise_if_cancelled(task, requested)
    return result


def _raise_if_cancelled(
    task: asyncio.Task[Any] | None, requested: int, error: BaseException | None = None
) -> None:
    if task is not None and task.cancelling() > requested:
        raise asyncio.CancelledError from error


# Versions are ``max(version + 1, now in ms)``: strictly increasing within one store and still
# increasing after the store lost its state, so an old transition never looks newer. Times are
# passed in as the caller's strings and stored verbatim, so they round-trip exactly.
SYNC = """
local state_key = KEYS[1]     -- hash: state, version, opened_at, changed_at, changed_by, counters
local failures_key = KEYS[2]  -- zset: the fleet's failure window (member holder:seq, score time)
                              -- since the fleet's last success
local probes_key = KEYS[3]    -- zset: half-open probe reservations
local channel = ARGV[1]
local holder = ARGV[2]
local now_text = ARGV[3]
local window = tonumber(ARGV[4])
local threshold = tonumber(ARGV[5])
local claim_base = tonumber(ARGV[6])
local claim = ARGV[7]         -- '' | 'open' | 'closed'
local claim_at = tonumber(ARGV[8])
local claim_opened_at = ARGV[9]
local successes = tonumber(ARGV[10])
local last_success = tonumber(ARGV[11])  -- 0: none this round
local first_failure = 12      -- ARGV[12..]: failures as (time, member) pairs
local now = tonumber(now_text)

local h = redis.call('HMGET', state_key, 'state', 'version', 'opened_at', 'changed_at')
local state = h[1] or 'closed'
local version = tonumber(h[2] or '0')
local opened_at = h[3] or ''
local changed_at = h[4] or '0'

local function transition(new_state, new_opened_at)
  version = math.max(version + 1, math.floor(now * 1000))
  state, opened_at, changed_at = new_state, new_opened_at, now_text
  local v = string.format('%d', version)
  redis.call('HSET', state_key, 'state', state, 'version', v, 'opened_at', opened_at,
             'changed_at', changed_at, 'changed_by', holder)
  redis.call('DEL', failures_key, probes_key)
  redis.call('PUBLISH', channel, cjson.encode({state = state, version = v,
             opened_at = opened_at, by = holder}))
end

-- A claim applies on the version it was based on; an open claim also applies to a closed
-- store whose last change is older than the claim (a trip made while the store was away).
if claim ~= '' and not (claim == 'closed' and state == 'closed') then
  local current = claim_base == version
  local newer_open = claim == 'open' and state == 'closed' and claim_at > tonumber(changed_at)
  if current or newer_open then
    local new_opened_at = ''
    if claim == 'open' then new_opened_at = claim_opened_at end
    transition(claim, new_opened_at)
  end
end

if successes > 0 then redis.call('HINCRBY', state_key, 'successes', successes) end
local n = (#ARGV - first_failure + 1) / 2
if n > 0 then redis.call('HINCRBY', state_key, 'failures', n) end

local count = 0
if state == 'closed' then
  -- A success ends an outage: its failures, and older ones, no longer count.
  local oldest = math.max(now - window, last_success)
  for i = first_failure, #ARGV, 2 do
    if tonumber(ARGV[i]) > oldest then redis.call('ZADD', failures_key, ARGV[i], ARGV[i + 1]) end
  end
  redis.call('ZREMRANGEBYSCORE', failures_key, '-inf', oldest)
  count = redis.call('ZCARD', failures_key)
  if count >= threshold then
    transition('open', now_text)
  elseif count > 0 then
    redis.call('PEXPIRE', failures_key, math.ceil(window * 1000) + 1000)
  end
end
return {state, string.format('%d', version), opened_at, changed_at, count}
"""

RESERVE = """
local state_key = KEYS[1]
local probes_key = KEYS[2]    -- zset: member = holder, score = expiry (wall time)
local open_version = ARGV[1]  -- the open version the holder saw
local holder = ARGV[2]
local now = tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local max_probes = tonumber(ARGV[5])

local h = redis.call('HMGET', state_key, 'state', 'version')
if h[1] ~= 'open' or h[2] ~= open_version then return 0 end
redis.call('ZREMRANGEBYSCORE', probes_key, '-inf', now)
local held = redis.call('ZSCORE', probes_key, holder)
if not held and redis.call('ZCARD', probes_key) >= max_probes then return 0 end
redis.call('ZADD', probes_key, now + ttl, holder)
redis.call('PEXPIRE', probes_key, math.ceil(ttl * 1000) + 1000)
return 1
"""


def as_text(raw: Any) -> str:
    """A Redis reply as text; a missing value (None) is the empty string."""
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def parse_view(raw: list[Any]) -> StoreView:
    state, version, opened_at, changed_at, failures = (as_text(item) for item in raw)
    return StoreView(
        state=CircuitState.OPEN if state == "open" else CircuitState.CLOSED,
        version=int(version),
        opened_at=float(opened_at) if opened_at else None,
        changed_at=float(changed_at),
        failures=int(failures),
    )


def _claim_args(report: Report) -> list[str]:
    claim = report.claim
    if claim is None:
        return ["0", "", "0", ""]
    opened_at = "" if claim.opened_at is None else repr(claim.opened_at)
    return [str(claim.base), claim.state.label, repr(claim.at), opened_at]


class BreakerStore:
    """One breaker's keys under the fleet's prefix, and the two scripts that change them.

    ``holder`` names this worker in the failure window and in probe reservations; it must
    be unique per breaker instance. Every call is bounded by ``CALL_TIMEOUT``.
    """

    def __init__(
        self, client: aioredis.Redis, keys: Keys, name: str, config: BreakerConfig, holder: str
    ) -> None:
        self.client = client
        self.holder = holder
        self.channel = keys.breaker_channel(name)
        self._config = config
        self._state = keys.breaker_state(name)
        self._failures = keys.breaker_failures(name)
        self._probes = keys.breaker_probes(name)
        self._sync = client.register_script(SYNC)
        self._reserve = client.register_script(RESERVE)

    async def sync(self, report: Report, now: float) -> StoreView:
        """Write one round of outcomes and the pending claim; return the fleet's state."""
        config = self._config
        args = [
            self.channel,
            self.holder,
            repr(now),
            repr(config.window_seconds),
            str(config.failure_threshold),
            *_claim_args(report),
            str(report.successes),
            "0" if report.last_success_at is None else repr(report.last_success_at),
        ]
        for at, sequence in report.failures:
            args += [repr(at), f"{self.holder}:{sequence}"]
        keys = [self._state, self._failures, self._probes]
        return parse_view(await _call(self._sync(keys=keys, args=args)))

    async def reserve_probe(self, version: int, now: float) -> bool:
        """Reserve one of the fleet's half-open probes for ``version``; False if none is left."""
        config = self._config
        args = [
            str(version),
            self.holder,
            repr(now),
            repr(config.probe_reservation_ttl),
            str(config.half_open_max_attempts),
        ]
        return bool(await _call(self._reserve(keys=[self._state, self._probes], args=args)))


class SharedBreaker(LocalBreaker):
    """A breaker shared by every worker that names the same breaker under the same prefix.

    ``client`` is the caller's (it opens and closes it) and should fail fast
    (``tickfleet.runtime.connections.fail_fast_async_client``); ``None`` means no store is
    configured and the breaker stays local. Await ``sync_once`` before publishing so a
    reachable store is followed from the first call, then run ``run`` as a task until the
    stream ends. A breaker belongs to one event loop.
    """

    def __init__(
        self,
        client: aioredis.Redis | None,
        name: str,
        config: BreakerConfig | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        *,
        keys: Keys | None = None,
        worker: str | None = None,
    ) -> None:
        super().__init__(name, config, clock, metrics, worker=worker)
        self._store = (
            None
            if client is None
            else BreakerStore(client, keys or Keys(), name, self.config, new_owner(name))
        )
        self._rounds = asyncio.Lock()  # one round at a time: replies are merged in order
        self._woken: asyncio.Event | None = None

    async def sync_once(self) -> None:
        """One round now: write what is pending, follow the fleet, reserve a probe if wanted."""
        store = self._store
        if store is None:
            return
        async with self._rounds:
            await self._round(store)

    async def run(self) -> None:
        """Sync loop and pub/sub listener until cancelled; then one last round, so outcomes
        recorded until then reach the store, and the ``CancelledError`` goes on.

        A store that fails never ends ``run`` (the worker decides locally meanwhile); a bug
        does, after the last round, so the stream's supervisor sees it.
        """
        store = self._store
        if store is None:
            await super().run()
            return
        if self._woken is not None:
            raise RuntimeError(f"breaker {self.name} is already running")
        self._woken = woken = asyncio.Event()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._sync_forever(woken))
                group.create_task(self._listen_forever(store, woken))
        finally:
            self._woken = None
            await self.sync_once()

    def _wake(self) -> None:
        if self._woken is not None:
            self._woken.set()

    # --- the two coroutines of ``run`` ------------------------------------------------------

    async def _sync_forever(self, woken: asyncio.Event) -> None:
        """A round, then the next after ``sync_seconds`` or as soon as something wakes it.

        The wake flag is cleared before the round, so a wake during a round is never lost:
        it makes the next wait return at once.
        """
        while True:
            woken.clear()
            await self.sync_once()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.sync_seconds):
                    await woken.wait()

    async def _listen_forever(self, store: BreakerStore, woken: asyncio.Event) -> None:
        """Every message on the breaker's channel wakes the sync loop; resubscribe after errors.

        A message is not trusted as state: the woken round reads the store, so a lost,
        duplicated or reordered message cannot mislead the worker. The subscription's own
        confirmation wakes it too, for transitions announced while it was not subscribed.
        """
        while True:
            try:
                await self._listen(store, woken)
            except STORE_ERRORS as error:
                logger.debug("breaker %s: events: %r; resubscribing", self.name, error)
            await asyncio.sleep(self.config.sync_seconds)

    async def _listen(self, store: BreakerStore, woken: asyncio.Event) -> None:
        pubsub = store.client.pubsub()
        try:
            await _call(pubsub.subscribe(store.channel))
            while True:
                if await _call(pubsub.get_message(timeout=LISTEN_SECONDS), bound=None):
                    woken.set()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    # --- one sync round ---------------------------------------------------------------------

    async def _round(self, store: BreakerStore) -> None:
        try:
            view = await self._exchange(store)
        except STORE_ERRORS as error:
            self._store_lost(error)
        else:
            self._store_answered(view)
            await self._reserve_probe(store)
        finally:
            self._settle()

    async def _exchange(self, store: BreakerStore) -> StoreView:
        """Write the pending report and read the fleet's state. A report that may not have
        been written (store error, cancellation) goes back to the outbox for the next round."""
        machine = self._machine
        machine.tick()
        report = machine.take_report()
        try:
            return await store.sync(report, self._clock.time())
        except BaseException:
            machine.restore(report)
            raise

    def _store_lost(self, error: Exception) -> None:
        if self._machine.set_source("local"):
            logger.warning(
                "breaker %s: state store unreachable (%r); deciding locally", self.name, error
            )

    def _store_answered(self, view: StoreView) -> None:
        changed = self._machine.set_source("shared")
        self._machine.adopt(view)
        if changed:
            logger.info("breaker %s: state store reachable; following the fleet", self.name)

    async def _reserve_probe(self, store: BreakerStore) -> None:
        machine = self._machine
        if not machine.needs_probe():
            return
        version, reserved_at = machine.version, self._clock.monotonic()
        try:
            granted = await store.reserve_probe(version, self._clock.time())
        except STORE_ERRORS:
            return  # the next round finds the store gone and decides locally
        if granted:
            machine.grant_probe(version, reserved_at)
