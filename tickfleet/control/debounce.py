"""When a pending reload may start: trailing debounce, capped by max-wait, rate limited.

Pure arithmetic on wall-clock seconds, kept apart so every edge can be unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReloadTiming:
    debounce: float = 1.0
    max_wait: float = 5.0
    min_interval: float = 5.0

    def __post_init__(self) -> None:
        if min(self.debounce, self.max_wait, self.min_interval) < 0:
            raise ValueError("reload timings must not be negative")
        if self.max_wait < self.debounce:
            raise ValueError("max_wait must be at least the debounce window")

    def due_at(
        self, last_request: float, first_pending: float, last_started: float | None
    ) -> float:
        """The earliest moment the pending batch may start.

        Quiet for ``debounce`` after the last request (trailing debounce), but never
        later than ``max_wait`` after the first pending one, so a steady trickle cannot
        starve reloads; and never sooner than ``min_interval`` after the previous start.
        """
        due = min(last_request + self.debounce, first_pending + self.max_wait)
        if last_started is not None:
            due = max(due, last_started + self.min_interval)
        return due

    def delay(
        self, now: float, last_request: float, first_pending: float, last_started: float | None
    ) -> float:
        """Seconds to wait from ``now`` (0 when the batch is already due)."""
        return max(0.0, self.due_at(last_request, first_pending, last_started) - now)
