"""What a supervisor does when one of its coroutines fails or returns.

Modes:

- ``restart``: restart after a jittered exponential backoff, as long as no more than
  ``max_restarts`` failures happened within ``window_seconds``; one more fails the
  supervisor (a coroutine that keeps failing is a broken stream, and the stream task's
  own restart machinery, with its lease, is the better place to start over).
- ``fail``: the first failure fails the supervisor.
- ``ignore``: the failure is reported like any other, the coroutine is not restarted
  and its siblings keep running (best-effort helpers).

A coroutine that returns normally is finished, whatever the mode, unless
``restart_on_exit`` is set: then it is started again after ``backoff_initial`` seconds.
Such exits are not failures and do not use up the restart budget.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal, Protocol

Mode = Literal["restart", "fail", "ignore"]
MODES: tuple[Mode, ...] = ("restart", "fail", "ignore")


class Rng(Protocol):
    """The part of ``random.Random`` that jitter needs (injected so tests can fix it)."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    mode: Mode = "restart"
    max_restarts: int = 5
    window_seconds: float = 60.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.1
    restart_on_exit: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
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
