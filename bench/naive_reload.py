"""The predecessor's reloads, for comparison: one full reload per request, unbounded.

Every reload request enqueues its own reload task at once; every task runs the reload
body at once. No coalescing, no debounce, no rate limit, no lock: runs overlap freely.
The production code is not changed; ``ReloadCoordinator.request`` and
``ReloadCoordinator.run_scheduled`` are replaced in the processes that import this module,
and the API's write batches (``producers.api.writes``) request a reload per request, each
on the write slot right after its write.

The same reload state hash is kept, so ``/health`` answers as usual: ``generation``
counts requests and ``done_generation`` is the newest generation a finished run saw.
The "scheduled" key counts reload tasks enqueued and not yet finished (it exists while
any is outstanding), so "nothing scheduled" means the same here as in bounded mode:
no reload work left anywhere.

Reload bodies are recorded by ``tests.support.instrumented_workers``, as in bounded mode.

    celery -A bench.naive_reload worker -Q control,maintenance -c 2
    uvicorn bench.naive_reload:api
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import orjson

import producers.api.main as api_main
from producers.api.main import create_app
from producers.api.writes import Subscribing, Then, subscribe_batch
from tests.support.instrumented_workers import app
from tickfleet.control.reload import ReloadBody, ReloadCoordinator, ReloadRequest, RunOutcome
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services

log = logging.getLogger("bench.naive_reload")

_REQUEST = """
local gen = redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HINCRBY', KEYS[1], 'pending', 1)
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('HSET', KEYS[1], 'last_requested_at', ARGV[1])
redis.call('INCR', KEYS[2])
return gen
"""

_START = """
local gen = redis.call('HGET', KEYS[1], 'generation') or '0'
redis.call('HSET', KEYS[1], 'pending', 0, 'last_started_at', ARGV[1])
return gen
"""

_RELEASE = """
local function _release(key)
  local left = redis.call('DECR', key)
  if left <= 0 then
    redis.call('DEL', key)
  end
  return left
end
"""

_UNSCHEDULE = _RELEASE + "return _release(KEYS[1])"

_FINISH = (
    _RELEASE
    + """
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
return _release(KEYS[2])
"""
)


def _naive_request(self: ReloadCoordinator, reason: str) -> ReloadRequest:
    """Count the request, then enqueue a reload of its own, due at once."""
    keys = [self._keys.reload_state, self._keys.reload_scheduled]
    gen = self._client.eval(_REQUEST, len(keys), *keys, self._clock.time())
    self._metrics.inc("reload_requests_total")
    try:
        self._scheduler.schedule(0)
    except Exception:
        self._client.eval(_UNSCHEDULE, 1, keys[1])
        raise
    log.debug("reload requested (%s): enqueued its own reload", reason)
    return ReloadRequest(int(gen), scheduled=True)


def _naive_run(self: ReloadCoordinator, body: ReloadBody) -> RunOutcome:
    """Run the body now, whatever else is running."""
    keys = [self._keys.reload_state, self._keys.reload_scheduled]
    gen = int(self._client.eval(_START, len(keys), *keys, self._clock.time()))
    started = time.perf_counter()
    summary: dict[str, Any] | None = None
    error: str | None = None
    try:
        summary = dict(body())
    except Exception as exc:
        log.exception("naive reload failed (generation %d)", gen)
        error = f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - started
    result = orjson.dumps({**(summary or {}), "duration_seconds": round(elapsed, 4)}).decode()
    ok = error is None
    args = [self._clock.time(), "1" if ok else "0", gen, result if error is None else error]
    self._client.eval(_FINISH, len(keys), *keys, *args)
    self._metrics.inc("reload_runs_total", labels={"result": "ok" if ok else "error"})
    self._metrics.observe("reload_duration_seconds", elapsed)
    return RunOutcome(
        "ran" if ok else "failed", generation=gen, requests=1, summary=summary, error=error
    )


def _one_by_one(
    services: Services,
    coordinator: ReloadCoordinator,
    batch: Sequence[Sequence[SubscriptionRequest]],
) -> Then[Subscribing]:
    """The API's write batches, one request each: every request asks its own reload, on
    the write slot right after its write, as the baseline always did (the bounded API
    moved its one reload request a batch off the write slot; this keeps the baseline's
    work where it was, so the ratio compares the reloads, not that move)."""
    done = [
        out for requests in batch for out in subscribe_batch(services, coordinator, [requests])()
    ]
    return lambda: done


ReloadCoordinator.request = _naive_request  # type: ignore[method-assign]
ReloadCoordinator.run_scheduled = _naive_run  # type: ignore[method-assign]
api_main.subscribe_batch = _one_by_one  # type: ignore[attr-defined] # create_app's batches

api = create_app()

__all__ = ["api", "app"]
