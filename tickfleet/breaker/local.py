"""A breaker that decides alone: the rules plus listeners, transition logs and the state gauge.

Streams are single-threaded asyncio programs, so the breaker takes no lock: while closed,
``can_execute`` is two attribute reads (tens of nanoseconds, ``bench/breaker.py``), which
is why it can be asked once per tick. ``SharedBreaker`` adds how to stay in step with the
fleet; everything here is what both breakers do in memory.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from tickfleet.breaker.machine import BreakerMachine
from tickfleet.breaker.state import (
    BreakerConfig,
    BreakerSnapshot,
    CircuitState,
    Listener,
    Source,
    Transition,
)
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock, SystemClock

logger = logging.getLogger("tickfleet.breaker")

STATE_GAUGE = "redis_circuit_state"


def default_worker() -> str:
    """The gauge's ``worker`` label: one series per process, stable for its lifetime."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LocalBreaker:
    """The same rules as ``SharedBreaker``, with all state in this process; source "local".

    Call it from one thread only (the event loop's). Transitions are announced after the
    call that caused them, in order and each once; a listener that calls back into the
    breaker is safe, and the transitions it causes are announced after the current one.
    """

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        *,
        worker: str | None = None,
    ) -> None:
        self.name = name
        self.config = config or BreakerConfig()
        self._clock = clock or SystemClock()
        self._machine = BreakerMachine(self.config, self._clock)
        self._listeners: list[Listener] = []
        self._announcing = False
        self._metrics = metrics
        self._worker = worker or default_worker()
        self._set_gauge(CircuitState.CLOSED)

    # --- the hot path ---------------------------------------------------------------------

    def can_execute(self) -> bool:
        machine = self._machine
        if machine.closed:
            return True
        allowed = machine.allow()
        self._settle()
        return allowed

    def record_success(self) -> None:
        self._machine.succeeded()
        self._settle()

    def record_failure(self, exc: BaseException | None = None) -> None:
        self._machine.failed(exc)
        self._settle()

    # --- reading --------------------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        return self._machine.state

    @property
    def failure_count(self) -> int:
        return self._machine.failure_count()

    @property
    def opened_at(self) -> float | None:
        return self._machine.opened_at

    @property
    def source(self) -> Source:
        return self._machine.source

    def snapshot(self) -> BreakerSnapshot:
        machine = self._machine
        return BreakerSnapshot(
            state=machine.state.label,
            failure_count=machine.failure_count(),
            opened_at=machine.opened_at,
            source=machine.source,
        )

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def run(self) -> None:
        """Nothing to keep in step: waits until cancelled, so both breakers run alike."""
        await asyncio.get_running_loop().create_future()

    # --- after every change ---------------------------------------------------------------

    def _settle(self) -> None:
        machine = self._machine
        if machine.transitions:
            self._announce_pending()
        if machine.wake_requested:
            machine.wake_requested = False
            self._wake()

    def _wake(self) -> None:
        """Hook for breakers that keep in step: something needs the fleet's attention."""

    def _announce_pending(self) -> None:
        if self._announcing:
            return  # a listener called back in: the loop below announces what it caused
        self._announcing = True
        try:
            pending = self._machine.transitions
            while pending:
                self._announce(pending.popleft())
        finally:
            self._announcing = False

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
            self._metrics.set_gauge(
                STATE_GAUGE, float(state), {"worker": self._worker, "breaker": self.name}
            )
