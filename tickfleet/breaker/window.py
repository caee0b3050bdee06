"""The rolling failure window of one worker."""

from __future__ import annotations

from collections import deque


class FailureWindow:
    """Monotonic times of the newest failures, at most ``threshold`` of them.

    Keeping only the newest ``threshold`` is enough to decide a trip (the threshold-th
    newest failure is inside the window or it is not) and bounds memory in a failure storm.
    """

    def __init__(self, threshold: int, seconds: float) -> None:
        self._times: deque[float] = deque(maxlen=threshold)
        self._seconds = seconds

    def add(self, now: float) -> int:
        """Record a failure at ``now``; return how many failures the window now holds."""
        self._times.append(now)
        return self.count(now)

    def count(self, now: float) -> int:
        oldest = now - self._seconds
        while self._times and self._times[0] <= oldest:
            self._times.popleft()
        return len(self._times)

    def clear(self) -> None:
        self._times.clear()
