"""Outcomes recorded in memory on the hot path, waiting for the next sync round."""

from __future__ import annotations

from collections import deque


class Outbox:
    """Failure times (with a per-worker sequence number) and a success count.

    Only the newest ``failure_cap`` failures are kept: more than a threshold's worth trips
    the fleet anyway, so older ones cannot change a decision. The sequence number makes
    every failure a distinct member of the store's window, so a report that is retried
    after a lost reply cannot count a failure twice.
    """

    def __init__(self, failure_cap: int) -> None:
        self._cap = failure_cap
        self._failures: deque[tuple[float, int]] = deque(maxlen=failure_cap)
        self._successes = 0
        self._sequence = 0

    def success(self) -> None:
        self._successes += 1

    def failure(self, at: float) -> None:
        self._sequence += 1
        self._failures.append((at, self._sequence))

    def drain(self) -> tuple[tuple[tuple[float, int], ...], int]:
        failures, successes = tuple(self._failures), self._successes
        self._failures.clear()
        self._successes = 0
        return failures, successes

    def restore(self, failures: tuple[tuple[float, int], ...], successes: int) -> None:
        """Put back what a failed sync round could not write, keeping the newest failures."""
        merged = sorted((*failures, *self._failures))
        self._failures = deque(merged, maxlen=self._cap)
        self._successes += successes
