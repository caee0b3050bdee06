"""Bounded subscription reloads: coalesced, debounced, rate limited, one at a time.

The predecessor reloaded on every API call, unbounded. Here a request only bumps a
generation counter in Redis and, if no reload is scheduled yet (an atomic marker),
schedules one after the debounce window; every other request is coalesced into it.

The scheduled run re-checks the timing (trailing debounce, max-wait, minimum interval)
and defers itself when it is early; takes a fleet-wide lease as a singleton lock
(owner token, TTL, renewed while running, compare-and-delete release); remembers the
generation it started from; and, when it finishes, schedules exactly one follow-up if
requests arrived meanwhile. Every step that reads and writes shared state is one Lua
script, so concurrent requests and runs on any number of hosts cannot lose a request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import orjson
import redis

from tickfleet.control.debounce import ReloadTiming
from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock
from tickfleet.runtime.lease import Lease, Renewer, read_lease

log = logging.getLogger("tickfleet.reload")

_REQUEST = """
local gen = redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HINCRBY', KEYS[1], 'pending', 1)
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HSET', KEYS[1], 'last_requested_at', ARGV[1])
redis.call('HSETNX', KEYS[1], 'first_pending_at', ARGV[1])
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[2]) then
  return {gen, 1}
end
redis.call('HINCRBY', KEYS[1], 'coalesced', 1)
return {gen, 0}
"""

_IDLE = """
local gen = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
local done = tonumber(redis.call('HGET', KEYS[1], 'done_generation') or '0')
if gen <= done then
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""

_START = """
local gen = redis.call('HGET', KEYS[1], 'generation') or '0'
local pending = redis.call('HGET', KEYS[1], 'pending') or '0'
redis.call('HSET', KEYS[1], 'pending', 0, 'last_started_at', ARGV[1], 'running_generation', gen)
redis.call('HDEL', KEYS[1], 'first_pending_at')
redis.call('DEL', KEYS[2])
return {gen, pending}
"""

_FINISH = """
if ARGV[2] == '1' then
  local done = tonumber(redis.call('HGET', KEYS[1], 'done_generation') or '0')
  if tonumber(ARGV[3]) > done then
    redis.call('HSET', KEYS[1], 'done_generation', ARGV[3])
  end
  redis.call('HSET', KEYS[1], 'last_finished_at', ARGV[1], 'last_result', ARGV[4])
  redis.call('HDEL', KEYS[1], 'last_error')
  redis.call('HINCRBY', KEYS[1], 'runs', 1)
else
  redis.call('HSET', KEYS[1], 'last_finished_at', ARGV[1], 'last_error', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'failed_runs', 1)
end
redis.call('HDEL', KEYS[1], 'running_generation')
local gen = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
local done = tonumber(redis.call('HGET', KEYS[1], 'done_generation') or '0')
if gen > done and redis.call('SET', KEYS[2], ARGV[5], 'NX', 'PX', ARGV[6]) then
  return 1
end
return 0
"""

_ENSURE = """
local gen = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0')
local done = tonumber(redis.call('HGET', KEYS[1], 'done_generation') or '0')
if gen > done and redis.call('EXISTS', KEYS[3]) == 0
   and redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""


class ReloadScheduler(Protocol):
    """Enqueues the scheduled reload task (a Celery countdown in the fleet)."""

    def schedule(self, countdown: float) -> None: ...


ReloadBody = Callable[[], Mapping[str, Any]]
"""The reload's work; returns a JSON-able summary, raises on failure."""


class ReloadBusyError(RuntimeError):
    """An immediate reload could not take the lock in time: one is running."""


class BodyRefusedError(RuntimeError):
    """A reload body declining to act on what it found (an empty registry, another
    database): a failed run whose reason is the whole story, logged without a traceback."""


@dataclass(frozen=True, slots=True)
class ReloadRequest:
    generation: int
    scheduled: bool  # True: this request scheduled the reload; False: coalesced into one


@dataclass(frozen=True, slots=True)
class RunOutcome:
    kind: Literal["idle", "deferred", "ran", "failed"]
    countdown: float | None = None
    generation: int | None = None
    requests: int = 0
    summary: Mapping[str, Any] | None = None
    error: str | None = None
    follow_up: bool = False


@dataclass(frozen=True, slots=True)
class ReloadConfig:
    timing: ReloadTiming
    lock_ttl: float = 30.0
    marker_ttl: float = 120.0

    @property
    def marker_ttl_ms(self) -> int:
        return int(self.marker_ttl * 1000)


def _iso(value: bytes | None) -> str | None:
    return datetime.fromtimestamp(float(value), UTC).isoformat() if value else None


class ReloadCoordinator:
    """Requests, schedules and runs reloads; shared state lives in one Redis hash."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        config: ReloadConfig,
        clock: Clock,
        scheduler: ReloadScheduler,
        metrics: Metrics,
    ) -> None:
        self._client = client
        self._keys = keys
        self._config = config
        self._clock = clock
        self._scheduler = scheduler
        self._metrics = metrics
        self._request: Any = client.register_script(_REQUEST)
        self._idle: Any = client.register_script(_IDLE)
        self._start: Any = client.register_script(_START)
        self._finish: Any = client.register_script(_FINISH)
        self._ensure: Any = client.register_script(_ENSURE)

    # --- producer side -------------------------------------------------------------

    def request(self, reason: str) -> ReloadRequest:
        """Record a reload request; schedule a reload unless one is already scheduled."""
        now = self._clock.time()
        gen, scheduled = self._request(
            keys=[self._keys.reload_state, self._keys.reload_scheduled],
            args=[now, self._config.marker_ttl_ms, f"request:{now}"],
        )
        self._metrics.inc("reload_requests_total")
        if not scheduled:
            self._metrics.inc("reload_coalesced_total")
            log.debug("reload request (%s) coalesced into the scheduled reload", reason)
            return ReloadRequest(int(gen), scheduled=False)
        try:
            self._scheduler.schedule(self._config.timing.debounce)
        except Exception:
            # Not lost: the generation moved, so the beat backstop schedules it later.
            self._client.delete(self._keys.reload_scheduled)
            raise
        log.info("reload requested (%s): scheduled in %.2fs", reason, self._config.timing.debounce)
        return ReloadRequest(int(gen), scheduled=True)

    def ensure_scheduled(self) -> bool:
        """Backstop for a lost scheduled task: reschedule when requests are pending."""
        keys = [self._keys.reload_state, self._keys.reload_scheduled, self._keys.reload_lock]
        if not self._ensure(keys=keys, args=["backstop", self._config.marker_ttl_ms]):
            return False
        log.warning("pending reload requests had no scheduled reload; scheduling one")
        self._scheduler.schedule(0)
        return True

    # --- worker side ------------------------------------------------------------------

    def run_scheduled(self, body: ReloadBody) -> RunOutcome:
        """What the scheduled reload task does: defer, skip, or run exactly once."""
        keys = [self._keys.reload_state, self._keys.reload_scheduled]
        if self._idle(keys=keys):
            return RunOutcome("idle")
        delay = self._delay()
        if delay > 0:
            return self._defer(delay, "debounce")
        lease = self._lease()
        if not lease.acquire():
            held = read_lease(self._client, self._keys.reload_lock)
            log.info("reload lock held by %s; deferring", held.owner)
            return self._defer(max(0.25, min(held.ttl_seconds, self._poll_seconds())), "locked")
        return self._run_locked(lease, body)

    def run_now(self, body: ReloadBody, wait_seconds: float = 30.0) -> RunOutcome:
        """An immediate, blocking reload (admin): waits for the lock, ignores debounce."""
        lease = self._lease()
        deadline = time.monotonic() + wait_seconds
        while not lease.acquire():
            if time.monotonic() >= deadline:
                raise ReloadBusyError(f"a reload is running; lock not free after {wait_seconds}s")
            time.sleep(0.1)
        return self._run_locked(lease, body)

    def _poll_seconds(self) -> float:
        return max(self._config.timing.debounce, 0.5)

    def _lease(self) -> Lease:
        return Lease(self._client, self._keys.reload_lock, self._config.lock_ttl)

    def _delay(self) -> float:
        state = self._client.hmget(
            self._keys.reload_state, ["last_requested_at", "first_pending_at", "last_started_at"]
        )
        now = self._clock.time()
        last_request = float(state[0]) if state[0] else now
        first_pending = float(state[1]) if state[1] else last_request
        last_started = float(state[2]) if state[2] else None
        return self._config.timing.delay(now, last_request, first_pending, last_started)

    def _defer(self, countdown: float, why: str) -> RunOutcome:
        self._client.set(
            self._keys.reload_scheduled, f"deferred:{why}", px=self._config.marker_ttl_ms
        )
        self._scheduler.schedule(countdown)
        log.debug("reload deferred %.2fs (%s)", countdown, why)
        return RunOutcome("deferred", countdown=countdown)

    def _run_locked(self, lease: Lease, body: ReloadBody) -> RunOutcome:
        try:
            gen, requests = self._start(
                keys=[self._keys.reload_state, self._keys.reload_scheduled],
                args=[self._clock.time()],
            )
            log.info("reload coalesced %d requests (generation %d)", int(requests), int(gen))
            with Renewer(lease, self._config.lock_ttl / 3) as renewer:
                return self._execute(body, int(gen), int(requests), renewer)
        finally:
            lease.release()

    def _execute(self, body: ReloadBody, gen: int, requests: int, renewer: Renewer) -> RunOutcome:
        started = time.perf_counter()
        try:
            summary = dict(body())
        except Exception as exc:
            crashed = not isinstance(exc, BodyRefusedError)
            log.error("reload failed (generation %d): %s", gen, exc, exc_info=crashed)
            return self._finish_run(gen, requests, started, error=f"{type(exc).__name__}: {exc}")
        if renewer.lost.is_set():
            log.error("reload lock was lost while running (generation %d)", gen)
        return self._finish_run(gen, requests, started, summary=summary)

    def _finish_run(
        self,
        gen: int,
        requests: int,
        started: float,
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> RunOutcome:
        elapsed = time.perf_counter() - started
        ok = error is None
        payload = orjson.dumps({**(summary or {}), "duration_seconds": round(elapsed, 4)}).decode()
        follow_up = bool(
            self._finish(
                keys=[self._keys.reload_state, self._keys.reload_scheduled],
                args=[
                    self._clock.time(),
                    "1" if ok else "0",
                    gen,
                    payload if ok else error,
                    "follow-up",
                    self._config.marker_ttl_ms,
                ],
            )
        )
        self._metrics.inc("reload_runs_total", labels={"result": "ok" if ok else "error"})
        self._metrics.observe("reload_duration_seconds", elapsed)
        if follow_up:
            log.info("requests arrived during the reload; scheduling one follow-up")
            self._scheduler.schedule(self._config.timing.debounce)
        if ok:
            log.info("reload finished in %.3fs (generation %d): %s", elapsed, gen, payload)
        return RunOutcome(
            "ran" if ok else "failed",
            generation=gen,
            requests=requests,
            summary=summary,
            error=error,
            follow_up=follow_up,
        )

    # --- observability -----------------------------------------------------------------

    def last_started(self) -> float | None:
        """Clock time the latest reload run started (None: none since Redis was empty)."""
        raw = self._client.hget(self._keys.reload_state, "last_started_at")
        return float(raw) if raw else None

    def status(self) -> dict[str, Any]:
        """The ``reload`` section of /health."""
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(self._keys.reload_state)
        pipe.exists(self._keys.reload_scheduled)
        pipe.get(self._keys.reload_lock)
        raw, scheduled, holder = pipe.execute()
        state = {k.decode(): v for k, v in raw.items()}
        last_result = state.get("last_result")
        return {
            "runs": int(state.get("runs", 0)),
            "failed_runs": int(state.get("failed_runs", 0)),
            "requests": int(state.get("requests", 0)),
            "coalesced": int(state.get("coalesced", 0)),
            "pending": int(state.get("pending", 0)),
            "scheduled": bool(scheduled),
            "running": holder is not None,
            "running_owner": holder.decode() if holder else None,
            "generation": int(state.get("generation", 0)),
            "done_generation": int(state.get("done_generation", 0)),
            "last_started_at": _iso(state.get("last_started_at")),
            "last_finished_at": _iso(state.get("last_finished_at")),
            "last_error": state["last_error"].decode() if "last_error" in state else None,
            "last_result": orjson.loads(last_result) if last_result else None,
        }
