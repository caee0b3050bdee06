"""The fleet-wide breaker: local decisions at memory speed, agreement through Redis.

The hot path only touches memory. A sync thread writes batched outcomes and local
transitions to the store with one Lua script per round (every ``sync_seconds``, or at once
when something changed), reads back the fleet's state, and reserves half-open probes. A
pub/sub thread wakes it when another worker announces a transition. When the store cannot
be reached the worker keeps breaking on its own and merges back once it answers again.
"""

from __future__ import annotations

import logging
from types import TracebackType

import redis

from tickfleet.breaker.config import BreakerConfig
from tickfleet.breaker.core import BreakerCore
from tickfleet.breaker.report import Report, StoreView
from tickfleet.breaker.store import BreakerStore
from tickfleet.breaker.ticker import Ticker
from tickfleet.breaker.wakeup import ChannelWaker
from tickfleet.clock import Clock, SystemClock
from tickfleet.lease import new_owner
from tickfleet.metrics import Metrics
from tickfleet.names import Keys

logger = logging.getLogger("tickfleet.breaker")

STOP_TIMEOUT = 10.0


class SharedBreaker(BreakerCore):
    """A breaker shared by every worker that names the same breaker under the same prefix.

    ``client`` should fail fast (``tickfleet.connections.fail_fast_client``); ``None``
    means no store is configured and the breaker stays local. ``start`` runs one sync
    round before returning, so a reachable store is followed from the first call on.
    """

    def __init__(
        self,
        client: redis.Redis | None,
        name: str,
        config: BreakerConfig | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        *,
        keys: Keys | None = None,
        worker: str | None = None,
    ) -> None:
        config = config or BreakerConfig()
        super().__init__(name, config, clock or SystemClock(), metrics, worker, client is not None)
        self._store = (
            None
            if client is None
            else BreakerStore(client, keys or Keys(), name, config, new_owner(name))
        )
        self._ticker: Ticker | None = None
        self._waker: ChannelWaker | None = None

    def start(self) -> None:
        store = self._store
        if store is None or self._ticker is not None:
            return
        self._sync_round()
        every = self.config.sync_seconds
        self._ticker = Ticker(f"breaker-sync:{self.name}", every, self._sync_round)
        self._waker = ChannelWaker(store, self._ticker.wake, every, f"breaker-events:{self.name}")
        self._ticker.start()
        self._waker.start()

    def stop(self) -> None:
        """Stop the background threads, then write what is still pending in one last round."""
        waker, ticker = self._waker, self._ticker
        self._waker = self._ticker = None
        if waker is not None:
            waker.stop(STOP_TIMEOUT)
        if ticker is not None:
            ticker.stop(STOP_TIMEOUT)
            self._sync_round()

    def __enter__(self) -> SharedBreaker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wake(self) -> None:
        ticker = self._ticker
        if ticker is not None:
            ticker.wake()

    # --- one sync round (runs on the sync thread, and once in ``start``) --------------------

    def _sync_round(self) -> None:
        store = self._store
        if store is None:
            return
        with self._lock:
            self._machine.tick()
            report = self._machine.take_report()
        try:
            view = store.sync(report, self._clock.time())
        except redis.RedisError as error:
            self._store_lost(report, error)
        else:
            self._store_answered(view)
            self._reserve_probe(store)
        self._settle()

    def _store_lost(self, report: Report, error: redis.RedisError) -> None:
        with self._lock:
            self._machine.restore(report)
            changed = self._machine.set_source("local")
        if changed:
            logger.warning(
                "breaker %s: state store unreachable (%r); deciding locally", self.name, error
            )

    def _store_answered(self, view: StoreView) -> None:
        with self._lock:
            changed = self._machine.set_source("shared")
            self._machine.adopt(view)
        if changed:
            logger.info("breaker %s: state store reachable; following the fleet", self.name)

    def _reserve_probe(self, store: BreakerStore) -> None:
        with self._lock:
            version = self._machine.version if self._machine.needs_probe() else None
        if version is None:
            return
        reserved_at = self._clock.monotonic()
        try:
            granted = store.reserve_probe(version, self._clock.time())
        except redis.RedisError:
            return  # the next round finds the store gone and switches to local
        if granted:
            with self._lock:
                self._machine.grant_probe(version, reserved_at)
