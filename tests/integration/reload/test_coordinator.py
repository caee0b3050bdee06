"""The reload coordinator against a real Redis, with a manual clock and a recording scheduler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import redis

from tickfleet.control.debounce import ReloadTiming
from tickfleet.control.reload import ReloadBusyError, ReloadConfig, ReloadCoordinator
from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import ManualClock

pytestmark = pytest.mark.timeout(30)


class RecordingScheduler:
    def __init__(self) -> None:
        self.countdowns: list[float] = []

    def schedule(self, countdown: float) -> None:
        self.countdowns.append(countdown)


class Harness:
    def __init__(self, client: redis.Redis, lock_ttl: float = 30.0) -> None:
        self.clock = ManualClock()
        self.scheduler = RecordingScheduler()
        self.metrics = MetricsBuffer()
        self.keys = Keys("t:")
        self.client = client
        self.coordinator = ReloadCoordinator(
            client,
            self.keys,
            ReloadConfig(ReloadTiming(1.0, 5.0, 5.0), lock_ttl=lock_ttl),
            self.clock,
            self.scheduler,
            self.metrics,
        )
        self.bodies: list[int] = []

    def body(self, during: Callable[[], object] | None = None) -> Callable[[], Mapping[str, Any]]:
        def run() -> Mapping[str, Any]:
            self.bodies.append(int(self.client.hget(self.keys.reload_state, "generation") or 0))
            if during:
                during()
            return {"ok": True}

        return run

    def counter(self, name: str, labels: str = "[]") -> float:
        return self.metrics.pending().get((name, labels), 0.0)


@pytest.fixture
def h(redis_client: redis.Redis) -> Harness:
    return Harness(redis_client)


def test_a_burst_schedules_once_and_coalesces_the_rest(h: Harness) -> None:
    results = [h.coordinator.request(f"r{i}") for i in range(10)]
    assert [r.scheduled for r in results] == [True] + [False] * 9
    assert [r.generation for r in results] == list(range(1, 11))
    assert h.scheduler.countdowns == [1.0]
    status = h.coordinator.status()
    assert (status["requests"], status["coalesced"], status["pending"], status["scheduled"]) == (
        10,
        9,
        10,
        True,
    )
    assert h.counter("reload_requests_total") == 10
    assert h.counter("reload_coalesced_total") == 9


def test_an_early_run_defers_for_the_rest_of_the_debounce_then_runs_once(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        h.coordinator.request("x")
    h.clock.advance(0.4)
    outcome = h.coordinator.run_scheduled(h.body())
    assert outcome.kind == "deferred" and outcome.countdown == pytest.approx(0.6)
    assert h.bodies == []
    h.clock.advance(0.6)
    with caplog.at_level(logging.INFO, logger="tickfleet.reload"):
        outcome = h.coordinator.run_scheduled(h.body())
    assert outcome.kind == "ran" and outcome.requests == 3 and not outcome.follow_up
    assert "reload coalesced 3 requests" in caplog.text
    assert h.bodies == [3]
    status = h.coordinator.status()
    assert (status["runs"], status["pending"], status["scheduled"], status["running"]) == (
        1,
        0,
        False,
        False,
    )
    # a duplicate copy of the task that fires afterwards finds nothing to do
    assert h.coordinator.run_scheduled(h.body()).kind == "idle"
    assert h.bodies == [3]


def test_a_steady_trickle_cannot_delay_a_reload_past_max_wait(h: Harness) -> None:
    ran_at = None
    for step in range(20):  # a request every 0.5 s
        h.coordinator.request("trickle")
        h.clock.advance(0.5)
        if h.coordinator.run_scheduled(h.body()).kind == "ran":
            ran_at = (step + 1) * 0.5
            break
    assert ran_at == 5.0


def test_min_interval_separates_two_starts(h: Harness) -> None:
    h.coordinator.request("a")
    h.clock.advance(1.0)
    assert h.coordinator.run_scheduled(h.body()).kind == "ran"
    h.coordinator.request("b")
    h.clock.advance(1.0)
    outcome = h.coordinator.run_scheduled(h.body())
    assert outcome.kind == "deferred" and outcome.countdown == pytest.approx(4.0)  # started at 1.0
    h.clock.advance(3.9)
    assert h.coordinator.run_scheduled(h.body()).kind == "deferred"
    h.clock.advance(0.1)
    assert h.coordinator.run_scheduled(h.body()).kind == "ran"


def test_requests_during_a_run_lead_to_exactly_one_follow_up_that_sees_them(h: Harness) -> None:
    h.coordinator.request("first")
    h.clock.advance(1.0)
    during = lambda: [h.coordinator.request("during") for _ in range(3)]  # noqa: E731
    outcome = h.coordinator.run_scheduled(h.body(during))
    assert outcome.kind == "ran" and outcome.generation == 1
    # the first request during the run scheduled a task; the others coalesced into it
    assert h.scheduler.countdowns == [1.0, 1.0]
    assert not outcome.follow_up
    h.clock.advance(5.0)
    follow = h.coordinator.run_scheduled(h.body())
    assert follow.kind == "ran" and follow.generation == 4 and follow.requests == 3
    assert h.bodies == [1, 4]
    assert h.coordinator.run_scheduled(h.body()).kind == "idle"


def test_the_finishing_run_schedules_the_follow_up_when_no_task_is_pending(h: Harness) -> None:
    h.coordinator.request("first")
    h.clock.advance(1.0)

    def lose_the_scheduled_task() -> None:
        h.coordinator.request("during")
        h.client.delete(h.keys.reload_scheduled)  # its task was lost with a dead worker

    outcome = h.coordinator.run_scheduled(h.body(lose_the_scheduled_task))
    assert outcome.follow_up
    assert h.scheduler.countdowns == [1.0, 1.0, 1.0]


def test_a_held_lock_defers_and_a_crashed_holder_blocks_no_longer_than_its_ttl(h: Harness) -> None:
    h.client.set(h.keys.reload_lock, "dead-holder", px=800)
    h.coordinator.request("x")
    h.clock.advance(1.0)
    outcome = h.coordinator.run_scheduled(h.body())
    assert outcome.kind == "deferred" and outcome.countdown is not None
    assert 0.25 <= outcome.countdown <= 1.0
    assert h.coordinator.status()["running_owner"] == "dead-holder"
    time.sleep(0.9)
    assert h.coordinator.run_scheduled(h.body()).kind == "ran"


def test_a_failed_reload_is_recorded_and_retried(h: Harness) -> None:
    h.coordinator.request("x")
    h.clock.advance(1.0)

    def broken() -> Mapping[str, Any]:
        raise RuntimeError("database on fire")

    outcome = h.coordinator.run_scheduled(broken)
    assert outcome.kind == "failed" and outcome.follow_up
    status = h.coordinator.status()
    assert status["last_error"] == "RuntimeError: database on fire"
    assert status["failed_runs"] == 1
    assert h.counter("reload_runs_total", '["error"]') == 1
    h.clock.advance(5.0)
    assert h.coordinator.run_scheduled(h.body()).kind == "ran"
    assert h.coordinator.status()["last_error"] is None


def test_the_backstop_reschedules_pending_requests_whose_task_was_lost(h: Harness) -> None:
    assert not h.coordinator.ensure_scheduled()
    h.coordinator.request("x")
    assert not h.coordinator.ensure_scheduled()  # its task is still scheduled
    h.client.delete(h.keys.reload_scheduled)
    assert h.coordinator.ensure_scheduled()
    assert h.scheduler.countdowns == [1.0, 0]


def test_an_immediate_reload_waits_for_the_lock_and_gives_up_clearly(h: Harness) -> None:
    h.client.set(h.keys.reload_lock, "someone", px=5000)
    with pytest.raises(ReloadBusyError):
        h.coordinator.run_now(h.body(), wait_seconds=0.3)
    h.client.delete(h.keys.reload_lock)
    h.coordinator.request("x")
    outcome = h.coordinator.run_now(h.body())
    assert outcome.kind == "ran" and outcome.requests == 1
