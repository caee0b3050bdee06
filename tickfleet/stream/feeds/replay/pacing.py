"""When each recorded tick is due again: ``start + (t - t0) / speed`` on a monotonic clock.

Every due time is computed from one anchor, never from the previous tick's, so the
sleeps' own lateness does not add up: a six-hour replay ends when it should, and each
tick is late only by what one wake-up costs (measured in ``bench/replay.py``).

A timer wakes late by up to a millisecond or more (the event loop rounds its timeout up
to the millisecond, and the process must then get a core back), so a pacer with ``spin``
sleeps until ``spin`` seconds before the due time and spends the rest yielding to the
event loop (``sleep(0)``, so the publisher and every other task still run) until the
clock reaches it.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Awaitable, Callable, Sequence

from tickfleet.runtime.clock import Clock

Sleep = Callable[[float], Awaitable[None]]

NS = 1_000_000_000


class Pacer:
    """Releases recorded instants (epoch ns) at ``speed`` times the pace they happened.

    ``speed`` 0 releases everything at once (the caller paces itself on the publisher).
    """

    def __init__(
        self, speed: float, clock: Clock, sleep: Sleep = asyncio.sleep, spin: float = 0.0
    ) -> None:
        if speed < 0:
            raise ValueError("a replay's speed is 0 (unpaced) or more")
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._spin = spin
        self._start = 0.0
        self._t0 = 0

    @property
    def unpaced(self) -> bool:
        return self.speed == 0

    def anchor(self, t0_ns: int) -> None:
        """From now on, the recorded instant ``t0_ns`` is due now."""
        self._start = self._clock.monotonic()
        self._t0 = t0_ns

    def due(self, ts_ns: int) -> float:
        """The monotonic instant the recorded instant ``ts_ns`` is due."""
        if self.unpaced:
            return self._start
        return self._start + (ts_ns - self._t0) / NS / self.speed

    def released(self, ts_ns: Sequence[int], lo: int, hi: int) -> int:
        """The end of the run of ``ts_ns[lo:hi]`` (sorted) that is due now."""
        if self.unpaced:
            return hi
        now_ns = self._t0 + int((self._clock.monotonic() - self._start) * self.speed * NS)
        return bisect_right(ts_ns, now_ns, lo, hi)

    async def wait(self, ts_ns: int, at_most: float) -> None:
        """Sleep until ``ts_ns`` is due, or ``at_most`` seconds, whichever comes first
        (the last ``spin`` seconds yielding to the event loop, not asleep)."""
        due = self.due(ts_ns)
        left = due - self._clock.monotonic()
        if left > at_most or left > self._spin:
            await self._sleep(min(left - self._spin, at_most))
            return
        while left > 0:
            await self._sleep(0)
            left = due - self._clock.monotonic()
