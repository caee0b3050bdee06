"""The breaker's rules, driven by a ManualClock through the public LocalBreaker API."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import pytest

from tickfleet.breaker import (
    Breaker,
    BreakerConfig,
    CircuitState,
    LocalBreaker,
    SharedBreaker,
    Source,
)
from tickfleet.runtime.clock import ManualClock

pytestmark = pytest.mark.timeout(10)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


BASE = BreakerConfig(
    failure_threshold=3, window_seconds=10.0, recovery_timeout=5.0, half_open_max_attempts=2
)


def config(**overrides: Any) -> BreakerConfig:
    return dataclasses.replace(BASE, **overrides)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def breaker(clock: ManualClock) -> LocalBreaker:
    return LocalBreaker("publish", config(), clock)


def trip(breaker: LocalBreaker) -> None:
    for _ in range(breaker.config.failure_threshold):
        breaker.record_failure(ConnectionError("refused"))
    assert breaker.state is OPEN


def test_opens_at_the_threshold(breaker: LocalBreaker, clock: ManualClock) -> None:
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CLOSED
    assert breaker.failure_count == 2
    assert breaker.can_execute()

    breaker.record_failure()

    assert breaker.state is OPEN
    assert not breaker.can_execute()
    assert breaker.opened_at == clock.time()


def test_failures_older_than_the_window_age_out(breaker: LocalBreaker, clock: ManualClock) -> None:
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(9.9)
    breaker.record_failure()  # the third, but the first two are 9.9 s old: still inside
    assert breaker.state is OPEN

    fresh = LocalBreaker("publish", config(), clock)
    fresh.record_failure()
    fresh.record_failure()
    clock.advance(10.0)
    assert fresh.failure_count == 0
    fresh.record_failure()
    fresh.record_failure()
    assert fresh.state is CLOSED
    assert fresh.failure_count == 2


def test_outages_ended_by_a_success_never_add_up_to_a_trip(
    breaker: LocalBreaker, clock: ManualClock
) -> None:
    """A cluster shard failing over twice within the window: each outage ends in a success."""
    for _ in range(2):
        breaker.record_failure()
        breaker.record_failure()
        clock.advance(1.0)
        breaker.record_success()
        assert breaker.failure_count == 0
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CLOSED  # six failures in 3 s, but never three in one outage

    breaker.record_failure()
    assert breaker.state is OPEN


def test_stays_open_for_the_recovery_timeout(breaker: LocalBreaker, clock: ManualClock) -> None:
    trip(breaker)
    clock.advance(4.99)
    assert not breaker.can_execute()
    assert breaker.state is OPEN

    clock.advance(0.01)

    assert breaker.can_execute()
    assert breaker.state is HALF_OPEN


def test_half_open_lets_through_at_most_the_probe_budget(
    breaker: LocalBreaker, clock: ManualClock
) -> None:
    trip(breaker)
    clock.advance(5.0)

    allowed = sum(breaker.can_execute() for _ in range(20))

    assert allowed == 2
    assert breaker.state is HALF_OPEN


def test_a_failed_probe_reopens_with_a_new_opened_at(
    breaker: LocalBreaker, clock: ManualClock
) -> None:
    trip(breaker)
    first_opened_at = breaker.opened_at
    clock.advance(5.0)
    assert breaker.can_execute()

    breaker.record_failure(TimeoutError("probe"))

    assert breaker.state is OPEN
    assert first_opened_at is not None
    assert breaker.opened_at == first_opened_at + 5.0
    clock.advance(4.99)
    assert not breaker.can_execute()
    clock.advance(0.01)
    assert breaker.can_execute()


def test_a_successful_probe_closes_with_a_fresh_window(
    breaker: LocalBreaker, clock: ManualClock
) -> None:
    trip(breaker)
    clock.advance(5.0)
    assert breaker.can_execute()

    breaker.record_success()

    assert breaker.state is CLOSED
    assert breaker.opened_at is None
    assert breaker.failure_count == 0
    assert all(breaker.can_execute() for _ in range(50))
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is CLOSED


def test_listeners_hear_each_transition_once(breaker: LocalBreaker, clock: ManualClock) -> None:
    heard: list[tuple[CircuitState, CircuitState, Source]] = []
    breaker.add_listener(lambda old, new, source: heard.append((old, new, source)))

    trip(breaker)
    breaker.record_failure()  # late failures while open change nothing
    assert not breaker.can_execute()
    clock.advance(5.0)
    for _ in range(5):
        breaker.can_execute()
    breaker.record_failure()  # failed probe
    clock.advance(5.0)
    breaker.can_execute()
    breaker.record_success()
    breaker.record_success()

    assert heard == [
        (CLOSED, OPEN, "local"),
        (OPEN, HALF_OPEN, "local"),
        (HALF_OPEN, OPEN, "local"),
        (OPEN, HALF_OPEN, "local"),
        (HALF_OPEN, CLOSED, "local"),
    ]


def test_each_transition_is_logged_once_with_name_and_source(
    breaker: LocalBreaker, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tickfleet.breaker")

    trip(breaker)
    breaker.can_execute()
    clock.advance(5.0)
    breaker.can_execute()

    messages = [r.getMessage() for r in caplog.records if r.name == "tickfleet.breaker"]
    assert len(messages) == 2
    assert messages[0].startswith("breaker publish: closed -> open (source=local")
    assert "ConnectionError('refused')" in messages[0]
    assert messages[1].startswith("breaker publish: open -> half_open (source=local")


def test_a_failing_listener_reaches_neither_the_caller_nor_other_listeners(
    breaker: LocalBreaker,
) -> None:
    heard: list[CircuitState] = []

    def broken(old: CircuitState, new: CircuitState, source: str) -> None:
        raise RuntimeError("listener bug")

    breaker.add_listener(broken)
    breaker.add_listener(lambda old, new, source: heard.append(new))

    trip(breaker)

    assert heard == [OPEN]


def test_snapshot_shows_what_health_needs(breaker: LocalBreaker, clock: ManualClock) -> None:
    breaker.record_failure()
    assert breaker.snapshot() == {
        "state": "closed",
        "failure_count": 1,
        "opened_at": None,
        "source": "local",
    }
    trip(breaker)
    clock.advance(5.0)
    breaker.can_execute()
    assert breaker.snapshot() == {
        "state": "half_open",
        "failure_count": 3,
        "opened_at": clock.time() - 5.0,
        "source": "local",
    }


class GaugeRecorder:
    """Keeps the last value of each gauge series, the way a metrics sink would."""

    def __init__(self) -> None:
        self.gauges: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None) -> None:
        raise AssertionError("the breaker only sets its state gauge")

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        raise AssertionError("the breaker only sets its state gauge")

    def observe_many(
        self, name: str, values: Sequence[float], labels: Mapping[str, str] | None = None
    ) -> None:
        raise AssertionError("the breaker only sets its state gauge")

    def set_gauge(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        self.gauges[(name, tuple(sorted((labels or {}).items())))] = value


def test_the_state_gauge_follows_transitions(clock: ManualClock) -> None:
    metrics = GaugeRecorder()
    breaker = LocalBreaker("publish", config(), clock, metrics, worker="w1")
    series = ("redis_circuit_state", (("breaker", "publish"), ("worker", "w1")))
    assert metrics.gauges == {series: 0.0}

    trip(breaker)
    assert metrics.gauges[series] == 1.0
    clock.advance(5.0)
    breaker.can_execute()
    assert metrics.gauges[series] == 2.0
    breaker.record_success()
    assert metrics.gauges[series] == 0.0


async def interleave(tasks: int, action: Callable[[], Awaitable[None]]) -> None:
    """Run ``action`` as ``tasks`` coroutines on one loop, their calls interleaved."""
    await asyncio.wait_for(asyncio.gather(*(action() for _ in range(tasks))), timeout=10)


@pytest.mark.parametrize(("per_task", "expected"), [(499, CLOSED), (500, OPEN)])
def test_interleaved_failures_are_all_counted(
    clock: ManualClock, per_task: int, expected: CircuitState
) -> None:
    breaker = LocalBreaker("publish", config(failure_threshold=4000, window_seconds=60.0), clock)
    heard: list[CircuitState] = []
    breaker.add_listener(lambda old, new, source: heard.append(new))

    async def fail() -> None:
        for _ in range(per_task):
            breaker.can_execute()
            breaker.record_failure()
            await asyncio.sleep(0)

    asyncio.run(interleave(8, fail))

    assert breaker.state is expected
    assert heard == ([OPEN] if expected is OPEN else [])
    if expected is CLOSED:
        assert breaker.failure_count == 8 * per_task


def test_interleaved_mixed_calls_announce_a_consistent_chain() -> None:
    breaker = LocalBreaker(
        "publish", config(failure_threshold=5, recovery_timeout=0.001, half_open_max_attempts=3)
    )
    heard: list[tuple[CircuitState, CircuitState]] = []
    breaker.add_listener(lambda old, new, source: heard.append((old, new)))

    async def churn() -> None:
        for i in range(3000):
            if breaker.can_execute() and i % 8 == 0:  # runs of failures long enough to trip
                breaker.record_success()
            else:
                breaker.record_failure()
            if i % 7 == 0:
                await asyncio.sleep(0)

    asyncio.run(interleave(8, churn))

    assert len(heard) > 2
    assert heard[0][0] is CLOSED
    assert all(prev[1] is nxt[0] for prev, nxt in itertools.pairwise(heard))
    assert heard[-1][1] is breaker.state


def test_a_listener_calling_back_in_hears_the_chain_in_order(
    breaker: LocalBreaker, clock: ManualClock
) -> None:
    first: list[CircuitState] = []
    second: list[CircuitState] = []

    def reopen_on_half_open(old: CircuitState, new: CircuitState, source: Source) -> None:
        first.append(new)
        if new is HALF_OPEN:
            breaker.record_failure()  # a failed probe, reported from inside a listener

    breaker.add_listener(reopen_on_half_open)
    breaker.add_listener(lambda old, new, source: second.append(new))
    trip(breaker)
    clock.advance(5.0)

    breaker.can_execute()

    assert first == second == [OPEN, HALF_OPEN, OPEN]
    assert breaker.state is OPEN


def test_the_closed_check_costs_well_under_a_microsecond(breaker: LocalBreaker) -> None:
    check = breaker.can_execute
    calls = 200_000
    best = math.inf
    for _ in range(5):
        began = time.perf_counter_ns()
        for _ in range(calls):
            check()
        best = min(best, (time.perf_counter_ns() - began) / calls)
    print(f"can_execute() while closed: {best:.0f} ns")
    assert best < 1000


@pytest.mark.parametrize("kind", ["local", "shared without a store"])
def test_both_breakers_serve_through_the_protocol(clock: ManualClock, kind: str) -> None:
    breaker: Breaker = (
        LocalBreaker("publish", config(), clock)
        if kind == "local"
        else SharedBreaker(None, "publish", config(), clock)
    )

    async def serve() -> None:
        running = asyncio.create_task(breaker.run())
        await asyncio.sleep(0.01)
        for _ in range(3):
            breaker.record_failure()
        assert not breaker.can_execute()
        clock.advance(5.0)
        assert breaker.can_execute()
        breaker.record_success()
        assert breaker.snapshot() == {
            "state": "closed",
            "failure_count": 0,
            "opened_at": None,
            "source": "local",
        }
        assert not running.done()  # nothing to keep in step: run waits until cancelled
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(serve())
