from __future__ import annotations

from typing import Any

import pytest

from tickfleet.runtime.clock import ManualClock
from tickfleet.supervision import RestartPolicy
from tickfleet.supervision.policy import RestartBudget

pytestmark = pytest.mark.timeout(10)


class FixedRng:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_delay_doubles_from_initial_and_is_capped() -> None:
    policy = RestartPolicy(backoff_initial=0.5, backoff_max=3.0, jitter=0.0)
    rng = FixedRng(0.3)
    assert [policy.delay(k, rng) for k in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize(("draw", "expected"), [(0.0, 0.9), (0.5, 1.0), (1.0, 1.1)])
def test_jitter_comes_from_the_injected_rng(draw: float, expected: float) -> None:
    policy = RestartPolicy(backoff_initial=1.0, backoff_max=10.0, jitter=0.1)
    assert policy.delay(1, FixedRng(draw)) == pytest.approx(expected)


@pytest.mark.parametrize(
    "options",
    [
        {"on_failure": "sometimes"},
        {"max_restarts": -1},
        {"window_seconds": 0},
        {"backoff_initial": 2.0, "backoff_max": 1.0},
        {"backoff_initial": -1.0},
        {"jitter": 1.5},
    ],
)
def test_invalid_policies_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**options)


def test_budget_allows_max_restarts_within_the_window_then_refuses() -> None:
    budget = RestartBudget(RestartPolicy(max_restarts=2, window_seconds=10))
    assert [budget.spend(t) for t in (0.0, 1.0, 2.0)] == [1, 2, None]


def test_failures_older_than_the_window_no_longer_count() -> None:
    clock = ManualClock(0.0)
    budget = RestartBudget(RestartPolicy(max_restarts=2, window_seconds=10))
    attempts = []
    for _ in range(6):
        attempts.append(budget.spend(clock.monotonic()))
        clock.advance(6.0)
    assert attempts == [1, 2, 2, 2, 2, 2]
