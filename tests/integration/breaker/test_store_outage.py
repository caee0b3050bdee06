"""The state store goes away and comes back: workers break locally, then merge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from tests.integration.breaker.running import Fleet, shared_breaker
from tests.support.polling import await_until
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer
from tickfleet.breaker import BreakerConfig, CircuitState, SharedBreaker

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


def trip(breaker: SharedBreaker) -> None:
    for _ in range(CONFIG.failure_threshold):
        breaker.record_failure(ConnectionError("refused"))


def test_workers_break_locally_while_the_store_is_down_and_merge_when_it_returns(
    server: RedisServer,
) -> None:
    async def scenario() -> None:
        async with Fleet(server.url, CONFIG, timeout=0.3) as fleet:
            a, b = await fleet.join(), await fleet.join()
            assert (a.source, b.source) == ("shared", "shared")

            server.stop()
            await await_until(lambda: a.source == "local" and b.source == "local", timeout=3)

            # The threshold still trips, locally: never "always closed".
            assert a.can_execute()
            trip(a)
            assert a.state is OPEN
            assert not a.can_execute()
            assert b.state is CLOSED  # b cannot know: nothing carries the trip
            # Recovery still works, locally, with the local probe budget.
            waited = await await_until(a.can_execute, timeout=3)
            assert waited >= CONFIG.recovery_timeout - 0.3
            assert a.state is HALF_OPEN
            assert not a.can_execute()
            a.record_success()
            assert a.state is CLOSED

            trip(a)  # still down: this open must reach the fleet once the store is back
            opened_at = a.opened_at

            server.start()
            took = await await_until(
                lambda: a.source == b.source == "shared" and b.opened_at == opened_at, timeout=5
            )
            print(f"re-synced {took:.2f} s after the store came back")

            assert b.state in (OPEN, HALF_OPEN)
            assert a.opened_at == opened_at
            assert server.client().hget("tickfleet:breaker:publish:state", "state") == b"open"

    asyncio.run(scenario())


def test_a_store_that_restarts_empty_gets_the_open_state_back(server: RedisServer) -> None:
    async def scenario() -> None:
        async with Fleet(server.url, CONFIG, timeout=0.3) as fleet:
            a, b = await fleet.join(), await fleet.join()
            trip(a)
            await await_until(lambda: b.state is OPEN, timeout=2)
            opened_at = a.opened_at

            server.stop()
            server.start()  # empty: the version goes back to 0

            state = "tickfleet:breaker:publish:state"
            await await_until(lambda: server.client().hget(state, "state") == b"open", timeout=5)
            assert float(server.client().hget(state, "opened_at") or 0) == opened_at
            assert (a.state, b.state) == (OPEN, OPEN)

    asyncio.run(scenario())


def test_a_store_unreachable_from_the_start_never_raises_to_callers() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"

    async def scenario() -> None:
        started = time.monotonic()
        async with shared_breaker(url, CONFIG, timeout=0.3) as breaker:
            assert time.monotonic() - started < 2.0
            assert breaker.source == "local"
            assert breaker.can_execute()
            breaker.record_success()
            trip(breaker)
            assert breaker.state is OPEN
            assert breaker.snapshot()["source"] == "local"
            await asyncio.sleep(3 * CONFIG.sync_seconds)  # rounds and resubscriptions fail quietly
            assert breaker.state is OPEN

    asyncio.run(scenario())
