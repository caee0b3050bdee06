"""What a supervisor does when one of its coroutines fails.

- ``restart``: restart after a jittered exponential backoff, as long as no more than
  ``max_restarts`` failures happened within ``window_seconds``; one more fails the
  supervisor (a coroutine that keeps failing is a broken stream, and the stream task's
  own restart machinery, with its lease, is the better place to start over).
- ``fail``: the first failure fails the supervisor.

A coroutine that returns normally is finished, whatever the policy.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

OnFailure = Literal["restart", "fail"]
ON_FAILURE: tuple[OnFailure, ...] = ("restart", "fail")


class Rng(Protocol):
    """The part of ``random.Random`` that jitter needs (injected so tests can fix it)."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    on_failure: OnFailure = "restart"
    max_restarts: int = 5
    window_seconds: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.on_failure not in ON_FAILURE:
            raise ValueError(f"on_failure must be one of {ON_FAILURE}, not {self.on_failure!r}")
        if self.max_restarts < 0 or self.window_seconds <= 0:
            raise ValueError("max_restarts must be >= 0 and window_seconds > 0")
        if not 0 <= self.backoff_initial <= self.backoff_max:
            raise ValueError("backoff needs 0 <= backoff_initial <= backoff_max")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter is a fraction between 0 and 1")

    def delay(self, attempt: int, rng: Rng) -> float:
        """Seconds to wait before restart ``attempt`` (1-based): doubling, capped, jittered."""
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** max(0, attempt - 1))
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0)))


FAIL = RestartPolicy(on_failure="fail")


class RestartBudget:
    """Failure times of one coroutine within the policy's sliding window."""

    def __init__(self, policy: RestartPolicy) -> None:
        self._policy = policy
        self._failures: deque[float] = deque()

    def spend(self, now: float) -> int | None:
        """Count a failure at ``now``: the restart attempt it allows, or None when exhausted."""
        horizon = now - self._policy.window_seconds
        while self._failures and self._failures[0] <= horizon:
            self._failures.popleft()
        self._failures.append(now)
        attempt = len(self._failures)
        return attempt if attempt <= self._policy.max_restarts else None
