"""Clocks, injected wherever time decides behaviour so tests can drive it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tickfleet.config.settings import Settings


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (comparable across hosts)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never jumps (for intervals in one process)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class OffsetClock:
    """The system clock shifted by a fixed number of seconds.

    Every process of a fleet started with the same offset agrees on "now", so a whole
    fleet can run on another day (a demo of an expiry afternoon, a test that must pass
    whatever today's date is). Intervals are untouched: ``monotonic`` is the system's.
    """

    def __init__(self, offset_seconds: float) -> None:
        self.offset = offset_seconds

    def time(self) -> float:
        return time.time() + self.offset

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to; both readings advance together."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def time(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def clock_from_settings(settings: Settings) -> Clock:
    """The fleet clock: the system's, shifted by ``TICKFLEET_CLOCK_OFFSET_SECONDS`` if set."""
    offset = settings.clock_offset_seconds
    return OffsetClock(offset) if offset else SystemClock()
