"""The vocabulary every breaker speaks: states, sources, transitions, tuning, the interface."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Literal, Protocol, TypedDict

if TYPE_CHECKING:
    from tickfleet.config.settings import Settings


class CircuitState(IntEnum):
    """Values are the ``redis_circuit_state`` gauge values the predecessor service exported."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        """The lower-case name ``/health`` shows."""
        return self.name.lower()


Source = Literal["shared", "local"]
"""``shared``: in step with the fleet's state store; ``local``: deciding alone (store unreachable
or not configured)."""

Listener = Callable[[CircuitState, CircuitState, Source], None]
"""Called once per transition with the old state, the new state and the breaker's source.

Listeners run on the event loop, inside the call that caused the transition (a publisher's
``can_execute``/``record_*`` or a sync round), so they must be quick and must not block."""


class BreakerSnapshot(TypedDict):
    """What ``/health`` shows of a breaker."""

    state: str
    failure_count: int
    opened_at: float | None
    source: Source


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, queued by the rules and announced by the breaker, in order, once."""

    old: CircuitState
    new: CircuitState
    source: Source
    version: int


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Thresholds and timings shared by every worker of a fleet-wide breaker.

    ``probe_reservation_ttl`` bounds how long a half-open probe permit stays reserved: long
    enough for one publish and the report of its outcome, short enough that a prober that
    died with its permit does not hold the fleet half-open for long.
    """

    failure_threshold: int = 10
    window_seconds: float = 60.0
    recovery_timeout: float = 60.0
    half_open_max_attempts: int = 3
    sync_seconds: float = 1.0
    probe_reservation_ttl: float = 10.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_max_attempts < 1:
            raise ValueError("failure_threshold and half_open_max_attempts must be at least 1")
        timings = (
            self.window_seconds,
            self.recovery_timeout,
            self.sync_seconds,
            self.probe_reservation_ttl,
        )
        if min(timings) <= 0:
            raise ValueError("breaker windows, timeouts and intervals must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> BreakerConfig:
        return cls(
            failure_threshold=settings.breaker_failure_threshold,
            window_seconds=settings.breaker_window_seconds,
            recovery_timeout=settings.breaker_recovery_timeout,
            half_open_max_attempts=settings.breaker_half_open_max_attempts,
            sync_seconds=settings.breaker_sync_seconds,
        )


class Breaker(Protocol):
    """What publishers depend on, so a shared and a local breaker are interchangeable.

    ``can_execute`` reads memory only and never does I/O. Every method is called from the
    event loop's thread. ``run`` keeps the breaker in step until it is cancelled (a local
    breaker has nothing to keep in step and just waits).
    """

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

    def snapshot(self) -> BreakerSnapshot: ...

    async def run(self) -> None: ...
