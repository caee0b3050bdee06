"""The thread-safe face of a ``BreakerMachine``: hot path, listeners, logs and the gauge."""

from __future__ import annotations

import logging
import os
import socket
import threading

from tickfleet.breaker.config import BreakerConfig
from tickfleet.breaker.machine import BreakerMachine
from tickfleet.breaker.state import (
    BreakerSnapshot,
    CircuitState,
    Listener,
    Source,
    Transition,
)
from tickfleet.clock import Clock
from tickfleet.metrics import Metrics

logger = logging.getLogger("tickfleet.breaker")

STATE_GAUGE = "redis_circuit_state"


def default_worker() -> str:
    """The gauge's ``worker`` label: one series per process, stable for its lifetime."""
    return f"{socket.gethostname()}:{os.getpid()}"


class BreakerCore:
    """Everything a breaker does in memory; subclasses add how it stays in step.

    ``can_execute`` reads one attribute while closed, adds a clock read while open, and takes
    the lock only when half-open (or when recovery is due). Transitions are queued under the
    lock and announced outside it, in order, each once, so listeners may call back into the
    breaker and never run while it is locked.
    """

    def __init__(
        self,
        name: str,
        config: BreakerConfig,
        clock: Clock,
        metrics: Metrics | None,
        worker: str | None,
        reporting: bool,
    ) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._machine = BreakerMachine(config, clock, "local", reporting)
        self._lock = threading.Lock()
        self._announcing = threading.RLock()
        self._listeners: list[Listener] = []
        self._metrics = metrics
        self._worker = worker or default_worker()
        self._set_gauge(CircuitState.CLOSED)

    # --- the hot path ---------------------------------------------------------------------

    def can_execute(self) -> bool:
        machine = self._machine
        if machine.closed:
            return True
        if machine.state is CircuitState.OPEN and self._clock.monotonic() < machine.reopen_at:
            return False
        with self._lock:
            allowed = machine.allow()
        self._settle()
        return allowed

    def record_success(self) -> None:
        with self._lock:
            self._machine.succeeded()
        self._settle()

    def record_failure(self, exc: BaseException | None = None) -> None:
        with self._lock:
            self._machine.failed(exc)
        self._settle()

    # --- reading --------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        return self._machine.state

    @property
    def failure_count(self) -> int:
        with self._lock:
            return self._machine.failure_count()

    @property
    def opened_at(self) -> float | None:
        return self._machine.opened_at

    @property
    def source(self) -> Source:
        return self._machine.source

    def snapshot(self) -> BreakerSnapshot:
        with self._lock:
            machine = self._machine
            return BreakerSnapshot(
                state=machine.state.label,
                failure_count=machine.failure_count(),
                opened_at=machine.opened_at,
                source=machine.source,
            )

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # --- after every change ---------------------------------------------------------------

    def _settle(self) -> None:
        machine = self._machine
        if machine.transitions:
            self._announce_pending()
        if machine.wake_requested:
            with self._lock:
                wake, machine.wake_requested = machine.wake_requested, False
            if wake:
                self._wake()

    def _wake(self) -> None:
        """Hook for breakers with a background sync: something needs the fleet's attention."""

    def _announce_pending(self) -> None:
        with self._announcing:
            while (transition := self._next_transition()) is not None:
                self._announce(transition)

    def _next_transition(self) -> Transition | None:
        with self._lock:
            pending = self._machine.transitions
            return pending.popleft() if pending else None

    def _announce(self, transition: Transition) -> None:
        level = logging.WARNING if transition.new is CircuitState.OPEN else logging.INFO
        error = self._machine.last_error if transition.new is CircuitState.OPEN else None
        logger.log(
            level,
            "breaker %s: %s -> %s (source=%s, version=%d%s)",
            self.name,
            transition.old.label,
            transition.new.label,
            transition.source,
            transition.version,
            f", last error: {error!r}" if error is not None else "",
        )
        self._set_gauge(transition.new)
        for listener in list(self._listeners):
            try:
                listener(transition.old, transition.new, transition.source)
            except Exception:
                logger.exception("breaker %s: listener %r failed", self.name, listener)

    def _set_gauge(self, state: CircuitState) -> None:
        if self._metrics is not None:
            self._metrics.set_gauge(STATE_GAUGE, float(state), {"worker": self._worker})
