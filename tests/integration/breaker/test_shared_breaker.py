"""Several SharedBreaker instances, each with its own client, on one real redis-server."""

from __future__ import annotations

import asyncio
import threading

import pytest
import redis

from tests.integration.breaker.running import (
    NAME,
    Fleet,
    connections,
    named_client,
    shared_breaker,
    subscribed,
    until_subscribed,
)
from tests.support.polling import await_until
from tickfleet.breaker import BreakerConfig, CircuitState, SharedBreaker
from tickfleet.metrics.buffer import MetricsBuffer

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
FAILURES_KEY = "tickfleet:breaker:publish:failures"


def test_a_synced_breaker_follows_the_store(redis_url: str) -> None:
    async def scenario() -> None:
        async with Fleet(redis_url, CONFIG) as fleet:
            breaker = await fleet.join()
            assert breaker.source == "shared"
            assert breaker.state is CLOSED

    asyncio.run(scenario())


def test_failures_spread_over_workers_trip_the_whole_fleet(redis_url: str) -> None:
    async def scenario() -> None:
        async with Fleet(redis_url, CONFIG) as fleet:
            a, b = await fleet.join(), await fleet.join()
            for _ in range(5):
                a.record_failure()
                b.record_failure()

            await await_until(lambda: a.state is OPEN and b.state is OPEN, timeout=2)

            assert a.opened_at == b.opened_at

    asyncio.run(scenario())


def test_fleet_failures_age_out_of_the_window(redis_url: str) -> None:
    config = BreakerConfig(failure_threshold=10, window_seconds=1.0, sync_seconds=0.1)

    async def scenario() -> None:
        async with Fleet(redis_url, config) as fleet:
            a, b = await fleet.join(), await fleet.join()
            for _ in range(5):
                a.record_failure()
            await await_until(lambda: b.failure_count == 5, timeout=2)
            await asyncio.sleep(1.1)

            for _ in range(5):
                b.record_failure()
            await asyncio.sleep(0.5)  # several sync rounds of both workers

            assert (a.state, b.state) == (CLOSED, CLOSED)
            assert b.failure_count == 5

    asyncio.run(scenario())


def test_a_successful_probe_closes_the_fleet(redis_url: str) -> None:
    async def scenario() -> None:
        async with Fleet(redis_url, CONFIG) as fleet:
            a, b = await fleet.join(), await fleet.join()
            for _ in range(10):
                a.record_failure()
            await await_until(lambda: b.state is OPEN, timeout=1)
            await await_until(a.can_execute, timeout=2)

            a.record_success()

            assert a.state is CLOSED
            await await_until(lambda: b.state is CLOSED, timeout=1)
            assert b.can_execute()

    asyncio.run(scenario())


def test_a_failed_probe_reopens_the_fleet_with_a_new_opened_at(redis_url: str) -> None:
    async def scenario() -> None:
        async with Fleet(redis_url, CONFIG) as fleet:
            a, b = await fleet.join(), await fleet.join()
            for _ in range(10):
                a.record_failure()
            await await_until(lambda: b.state is OPEN, timeout=1)
            first_opened_at = b.opened_at
            await await_until(b.can_execute, timeout=2)
            assert not a.can_execute()  # the fleet's only probe is b's

            b.record_failure(TimeoutError("probe"))

            assert b.state is OPEN
            await await_until(lambda: a.state is OPEN and a.opened_at == b.opened_at, timeout=1)
            assert b.opened_at is not None and first_opened_at is not None
            assert b.opened_at > first_opened_at

    asyncio.run(scenario())


def test_a_worker_joining_an_open_fleet_starts_open(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        async with Fleet(redis_url, CONFIG) as fleet:
            a = await fleet.join()
            for _ in range(10):
                a.record_failure()
            await await_until(lambda: redis_client.hget(STATE_KEY, "state") == b"open", timeout=1)

            late = await fleet.join()

            assert late.state in (OPEN, HALF_OPEN)
            assert late.opened_at == a.opened_at

    asyncio.run(scenario())


def test_publishing_coroutines_share_the_loop_with_the_sync(redis_url: str) -> None:
    async def publish_loop(a: SharedBreaker) -> int:
        allowed = 0
        for i in range(2000):
            if a.can_execute():
                allowed += 1
                if i >= 1990:  # an outage at the end: ten failures in a row
                    a.record_failure(ConnectionError("refused"))
                else:
                    a.record_success()
            if i % 50 == 0:
                await asyncio.sleep(0.001)  # let the loop breathe, as a stream does
        return allowed

    async def scenario() -> None:
        async with Fleet(redis_url, CONFIG) as fleet:
            a, b = await fleet.join(), await fleet.join()

            allowed = await asyncio.wait_for(publish_loop(a), timeout=20)

            assert allowed == 2000  # the tenth failure comes with the last call
            assert a.state is OPEN
            await await_until(lambda: b.state is OPEN, timeout=1)

    asyncio.run(scenario())


def test_the_state_gauge_reaches_the_fleet_metrics(
    redis_url: str, redis_client: redis.Redis
) -> None:
    buffer = MetricsBuffer()

    async def scenario() -> None:
        async with shared_breaker(redis_url, CONFIG, metrics=buffer, worker="host-1:42") as breaker:
            for _ in range(10):
                breaker.record_failure()
            buffer.flush(redis_client, "test:metrics:")

    asyncio.run(scenario())

    series = f'["host-1:42","{NAME}"]'  # worker, breaker
    assert redis_client.hget("test:metrics:redis_circuit_state", series) == b"1.0"


def test_without_a_store_it_is_a_local_breaker() -> None:
    async def scenario() -> None:
        breaker = SharedBreaker(None, "publish", CONFIG)
        await breaker.sync_once()
        running = asyncio.create_task(breaker.run())
        assert breaker.source == "local"
        for _ in range(10):
            breaker.record_failure()
        assert breaker.state is OPEN
        assert breaker.snapshot()["source"] == "local"
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(scenario())


def test_runs_and_syncs_without_starting_a_thread(redis_url: str) -> None:
    async def scenario() -> None:
        before = threading.active_count()
        async with Fleet(redis_url, CONFIG) as fleet:
            a, b = await fleet.join(), await fleet.join()
            for _ in range(10):
                a.record_failure()
            await await_until(lambda: b.state is OPEN, timeout=1)  # pub/sub and rounds ran
            await asyncio.sleep(3 * CONFIG.sync_seconds)  # and periodic rounds
            during = threading.active_count()
        assert (before, during) == (before, before), [t.name for t in threading.enumerate()]
        assert threading.active_count() == before

    asyncio.run(scenario())


def test_cancelling_run_closes_its_subscription_and_writes_what_is_pending(
    redis_url: str, redis_client: redis.Redis
) -> None:
    config = BreakerConfig(failure_threshold=10, sync_seconds=60.0)  # no periodic round here

    async def scenario() -> None:
        client, name = named_client(redis_url)
        try:
            breaker = SharedBreaker(client, "publish", config)
            await breaker.sync_once()
            before = await connections(client, name)
            running = asyncio.create_task(breaker.run())
            subscription = await until_subscribed(client, name)
            await asyncio.sleep(0.3)  # the first round and the one the subscription woke
            during = await connections(client, name)
            breaker.record_success()
            for _ in range(3):
                breaker.record_failure()
            await asyncio.sleep(0.3)
            assert redis_client.zcard(FAILURES_KEY) == 0  # pending: nothing woke a round

            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running

            assert redis_client.zcard(FAILURES_KEY) == 3
            assert redis_client.hget(STATE_KEY, "successes") == b"1"
            await await_until(lambda: not subscribed(clients_named(redis_client, name)), 2)
            after = clients_named(redis_client, name)
            print(f"connections before run {len(before)}, during {len(during)}, after {len(after)}")
            assert subscription["id"] not in {entry["id"] for entry in after}
            assert not subscribed(before) and len(after) <= len(during)
        finally:
            await client.aclose()
        await await_until(lambda: not clients_named(redis_client, name), timeout=2)

    asyncio.run(scenario())


def test_a_round_cancelled_in_flight_is_written_by_the_last_round(
    redis_url: str, redis_client: redis.Redis
) -> None:
    config = BreakerConfig(failure_threshold=3, sync_seconds=60.0)

    async def scenario() -> None:
        async with shared_breaker(redis_url, config, timeout=5.0) as breaker:
            running = asyncio.create_task(breaker.run())  # a second run is refused
            with pytest.raises(RuntimeError, match="already running"):
                await running
            redis_client.client_pause(1000, all=False)  # scripts wait; reads go on
            for _ in range(3):
                breaker.record_failure(ConnectionError("refused"))  # trips: a round starts
            await asyncio.sleep(0.2)
            assert redis_client.hget(STATE_KEY, "state") is None  # the round is still waiting
            # leaving the block cancels run() while its round waits on the paused server

        assert redis_client.hget(STATE_KEY, "state") == b"open"
        assert float(redis_client.hget(STATE_KEY, "opened_at") or 0) == breaker.opened_at

    asyncio.run(scenario())


def clients_named(client: redis.Redis, name: str) -> list[dict[str, str]]:
    return [entry for entry in client.client_list() if entry.get("name") == name]


def test_run_ends_when_cancelled_whatever_it_awaits(redis_url: str) -> None:
    # Each step of the loop lands the cancellation in another phase of a round or of the
    # subscription (redis-py can swallow a cancellation that arrives mid-command).
    async def scenario() -> None:
        client, _ = named_client(redis_url)
        try:
            for steps in range(40):
                breaker = SharedBreaker(client, "publish", CONFIG)
                breaker.record_failure()  # something to write in the first round
                running = asyncio.create_task(breaker.run())
                for _ in range(steps):
                    await asyncio.sleep(0)
                running.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await asyncio.wait_for(running, timeout=3)
        finally:
            await client.aclose()

    asyncio.run(scenario())
