"""The state store goes away and comes back: workers break locally, then merge."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.support.polling import wait_until
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tickfleet.breaker import BreakerConfig, CircuitState, SharedBreaker
from tickfleet.connections import fail_fast_client

pytestmark = pytest.mark.timeout(60)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
CONFIG = BreakerConfig(
    failure_threshold=3,
    window_seconds=30.0,
    recovery_timeout=1.0,
    half_open_max_attempts=1,
    sync_seconds=0.2,
)


@pytest.fixture
def server(redis_server_factory: Callable[[], RedisServer]) -> RedisServer:
    return redis_server_factory()


@pytest.fixture
def pair(server: RedisServer) -> Iterator[tuple[SharedBreaker, SharedBreaker]]:
    a = SharedBreaker(fail_fast_client(server.url, timeout=0.3), "publish", CONFIG)
    b = SharedBreaker(fail_fast_client(server.url, timeout=0.3), "publish", CONFIG)
    with a, b:
        yield a, b


def trip(breaker: SharedBreaker) -> None:
    for _ in range(CONFIG.failure_threshold):
        breaker.record_failure(ConnectionError("refused"))


def test_workers_break_locally_while_the_store_is_down_and_merge_when_it_returns(
    server: RedisServer, pair: tuple[SharedBreaker, SharedBreaker]
) -> None:
    a, b = pair
    assert (a.source, b.source) == ("shared", "shared")

    server.stop()
    wait_until(lambda: a.source == "local" and b.source == "local", timeout=3)

    # The threshold still trips, locally: never "always closed".
    assert a.can_execute()
    trip(a)
    assert a.state is OPEN
    assert not a.can_execute()
    assert b.state is CLOSED  # b cannot know: nothing carries the trip
    # Recovery still works, locally, with the local probe budget.
    waited = wait_until(a.can_execute, timeout=3)
    assert waited >= CONFIG.recovery_timeout - 0.3
    assert a.state is HALF_OPEN
    assert not a.can_execute()
    a.record_success()
    assert a.state is CLOSED

    trip(a)  # still down: this open must reach the fleet once the store is back
    opened_at = a.opened_at

    server.start()
    took = wait_until(
        lambda: a.source == b.source == "shared" and b.opened_at == opened_at, timeout=5
    )
    print(f"re-synced {took:.2f} s after the store came back")

    assert b.state in (OPEN, HALF_OPEN)
    assert a.opened_at == opened_at
    assert server.client().hget("tickfleet:breaker:publish:state", "state") == b"open"


def test_a_store_unreachable_from_the_start_never_raises_to_callers() -> None:
    client = fail_fast_client(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    started = time.monotonic()
    with SharedBreaker(client, "publish", CONFIG) as breaker:
        assert time.monotonic() - started < 2.0
        assert breaker.source == "local"
        assert breaker.can_execute()
        breaker.record_success()
        trip(breaker)
        assert breaker.state is OPEN
        assert breaker.snapshot()["source"] == "local"
