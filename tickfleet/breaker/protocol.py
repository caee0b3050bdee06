"""The interface publishers depend on, so a shared and a local breaker are interchangeable."""

from __future__ import annotations

from typing import Protocol

from tickfleet.breaker.state import BreakerSnapshot, CircuitState, Listener, Source


class Breaker(Protocol):
    """A circuit breaker whose ``can_execute`` costs a few memory reads and never does I/O."""

    @property
    def state(self) -> CircuitState: ...

    @property
    def failure_count(self) -> int: ...

    @property
    def opened_at(self) -> float | None: ...

    @property
    def source(self) -> Source: ...

    def can_execute(self) -> bool: ...

    def record_success(self) -> None: ...

    def record_failure(self, exc: BaseException | None = None) -> None: ...

    def add_listener(self, listener: Listener) -> None: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def snapshot(self) -> BreakerSnapshot: ...
