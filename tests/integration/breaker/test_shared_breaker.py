"""Several SharedBreaker instances, each with its own client, on one real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.support.polling import wait_until
from tickfleet.breaker import (
    BreakerConfig,
    CircuitState,
    SharedBreaker,
)
from tickfleet.connections import fail_fast_client
from tickfleet.metrics import MetricsBuffer

pytestmark = pytest.mark.timeout(60)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
CONFIG = BreakerConfig(
    failure_threshold=10,
    window_seconds=30.0,
    recovery_timeout=0.5,
    half_open_max_attempts=1,
    sync_seconds=0.2,
)

STATE_KEY = "tickfleet:breaker:publish:state"

Factory = Callable[..., SharedBreaker]


@pytest.fixture
def fleet(redis_url: str) -> Iterator[Factory]:
    """Started breakers named "publish", each with its own client; all stopped at the end."""
    started: list[SharedBreaker] = []

    def make(config: BreakerConfig = CONFIG) -> SharedBreaker:
        breaker = SharedBreaker(fail_fast_client(redis_url), "publish", config)
        breaker.start()
        started.append(breaker)
        return breaker

    yield make
    for breaker in started:
        breaker.stop()


def test_a_started_breaker_follows_the_store(fleet: Factory) -> None:
    breaker = fleet()
    assert breaker.source == "shared"
    assert breaker.state is CLOSED


def test_failures_spread_over_workers_trip_the_whole_fleet(fleet: Factory) -> None:
    a, b = fleet(), fleet()
    for _ in range(5):
        a.record_failure()
        b.record_failure()

    wait_until(lambda: a.state is OPEN and b.state is OPEN, timeout=2)

    assert a.opened_at == b.opened_at


def test_fleet_failures_age_out_of_the_window(fleet: Factory) -> None:
    config = BreakerConfig(failure_threshold=10, window_seconds=1.0, sync_seconds=0.1)
    a, b = fleet(config), fleet(config)
    for _ in range(5):
        a.record_failure()
    wait_until(lambda: b.failure_count == 5, timeout=2)
    time.sleep(1.1)

    for _ in range(5):
        b.record_failure()
    time.sleep(0.5)  # several sync rounds of both workers

    assert (a.state, b.state) == (CLOSED, CLOSED)
    assert b.failure_count == 5


def test_a_successful_probe_closes_the_fleet(fleet: Factory) -> None:
    a, b = fleet(), fleet()
    for _ in range(10):
        a.record_failure()
    wait_until(lambda: b.state is OPEN, timeout=1)
    wait_until(a.can_execute, timeout=2)

    a.record_success()

    assert a.state is CLOSED
    wait_until(lambda: b.state is CLOSED, timeout=1)
    assert b.can_execute()


def test_a_failed_probe_reopens_the_fleet_with_a_new_opened_at(fleet: Factory) -> None:
    a, b = fleet(), fleet()
    for _ in range(10):
        a.record_failure()
    wait_until(lambda: b.state is OPEN, timeout=1)
    first_opened_at = b.opened_at
    wait_until(b.can_execute, timeout=2)
    assert not a.can_execute()  # the fleet's only probe is b's

    b.record_failure(TimeoutError("probe"))

    assert b.state is OPEN
    wait_until(lambda: a.state is OPEN and a.opened_at == b.opened_at, timeout=1)
    assert b.opened_at is not None and first_opened_at is not None
    assert b.opened_at > first_opened_at


def test_a_worker_joining_an_open_fleet_starts_open(
    fleet: Factory, redis_client: redis.Redis
) -> None:
    a = fleet()
    for _ in range(10):
        a.record_failure()
    wait_until(lambda: redis_client.hget(STATE_KEY, "state") == b"open", timeout=1)

    late = fleet()

    assert late.state in (OPEN, HALF_OPEN)
    assert late.opened_at == a.opened_at


def test_calls_from_an_event_loop_while_the_sync_thread_runs(fleet: Factory) -> None:
    a, b = fleet(), fleet()

    async def publish_loop() -> int:
        allowed = 0
        for i in range(2000):
            if a.can_execute():
                allowed += 1
                if i % 200 == 199:
                    a.record_failure(ConnectionError("refused"))
                else:
                    a.record_success()
            if i % 50 == 0:
                await asyncio.sleep(0.001)  # let the loop breathe, as a stream does
        return allowed

    allowed = asyncio.run(asyncio.wait_for(publish_loop(), timeout=20))

    assert allowed == 2000  # the tenth failure comes with the last call
    assert a.state is OPEN
    wait_until(lambda: b.state is OPEN, timeout=1)


def test_the_state_gauge_reaches_the_fleet_metrics(
    redis_url: str, redis_client: redis.Redis
) -> None:
    buffer = MetricsBuffer()
    with SharedBreaker(
        fail_fast_client(redis_url), "publish", CONFIG, metrics=buffer, worker="host-1:42"
    ) as breaker:
        for _ in range(10):
            breaker.record_failure()
        buffer.flush(redis_client, "test:metrics:")

    assert redis_client.hget("test:metrics:redis_circuit_state", '["host-1:42"]') == b"1.0"


def test_without_a_store_it_is_a_local_breaker() -> None:
    with SharedBreaker(None, "publish", CONFIG) as breaker:
        assert breaker.source == "local"
        for _ in range(10):
            breaker.record_failure()
        assert breaker.state is OPEN
        assert breaker.snapshot()["source"] == "local"
