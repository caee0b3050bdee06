"""Breaker tuning, independent of how it is read from the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tickfleet.settings import Settings


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
