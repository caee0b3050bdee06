"""Half-open probe permits held by one worker."""

from __future__ import annotations

import math


class ProbeGate:
    """Hands out the probes this worker may let through while half-open.

    Deciding alone, the worker owns the whole budget of ``max_attempts``. In step with the
    fleet it holds at most one permit at a time, reserved from the fleet-wide budget by the
    sync thread, and the permit lapses a little before its reservation in the store does,
    so it can never be used once another worker could have taken its place.
    """

    def __init__(self, max_attempts: int, ttl: float) -> None:
        self._max = max_attempts
        self._ttl = ttl
        self._permits = 0
        self._until = 0.0
        self._issued = 0
        self._out_until = 0.0
        self.wanted = False

    def reset(self) -> None:
        self._permits = self._issued = 0
        self._until = self._out_until = 0.0
        self.wanted = False

    def own_budget(self) -> None:
        """Deciding alone: what is left of the whole budget in this half-open period."""
        self._permits = max(0, self._max - self._issued)
        self._until = math.inf

    def drop_budget(self) -> None:
        """Back in step with the fleet: only reserved permits count from now on."""
        self._permits = 0

    def take(self, now: float) -> bool:
        if self._permits > 0 and now < self._until:
            self._permits -= 1
            self._issued += 1
            self._out_until = now + self._ttl
            return True
        return False

    def needs_reservation(self, now: float) -> bool:
        """Someone asked for a probe, none is held, and no probe of ours is still out."""
        holding = self._permits > 0 and now < self._until
        return self.wanted and not holding and now >= self._out_until

    def grant(self, reserved_at: float) -> None:
        self._permits = 1
        self._until = reserved_at + self._ttl * 0.9
        self.wanted = False
