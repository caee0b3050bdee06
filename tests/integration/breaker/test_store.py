"""The Lua scripts on a real redis-server: versions, the fleet window, probe reservations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from tickfleet.breaker import BreakerConfig, CircuitState
from tickfleet.breaker.machine import Claim, Report, StoreView
from tickfleet.breaker.shared import BreakerStore
from tickfleet.keyspace.keys import Keys

pytestmark = pytest.mark.timeout(30)

CONFIG = BreakerConfig(
    failure_threshold=3, window_seconds=10.0, half_open_max_attempts=2, probe_reservation_ttl=5.0
)
KEYS = Keys("test:")
NOTHING = Report(None, (), 0)


class Stores:
    """Stores of the breaker "publish" for any number of holders, on one client."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    def __call__(self, holder: str) -> BreakerStore:
        return BreakerStore(self.client, KEYS, "publish", CONFIG, holder)


def on_redis(url: str, scenario: Callable[[Stores], Awaitable[None]]) -> None:
    """Run ``scenario`` on a fresh event loop with a client it does not have to close."""

    async def main() -> None:
        client = aioredis.Redis.from_url(url, socket_timeout=5)
        try:
            await scenario(Stores(client))
        finally:
            await client.aclose()

    asyncio.run(main())


def failures(*times: float) -> Report:
    return Report(None, tuple((at, i) for i, at in enumerate(times)), 0)


def open_claim(base: int, at: float) -> Report:
    return Report(Claim(base, CircuitState.OPEN, at, at), (), 0)


def closed_claim(base: int, at: float) -> Report:
    return Report(Claim(base, CircuitState.CLOSED, at, None), (), 0)


def test_an_empty_store_reads_closed_at_version_zero(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        view = await store("a").sync(NOTHING, time.time())
        assert view == StoreView(CircuitState.CLOSED, 0, None, 0.0, 0)

    on_redis(redis_url, scenario)


def test_failures_from_several_workers_trip_the_fleet_inside_the_window(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        a, b = store("a"), store("b")
        now = time.time()
        assert (await a.sync(failures(now - 1, now), now)).failures == 2

        async with store.client.pubsub(ignore_subscribe_messages=True) as events:
            await events.subscribe(a.channel)
            await events.get_message(timeout=1)
            view = await b.sync(failures(now), now)
            message = await events.get_message(timeout=1)

        assert view.state is CircuitState.OPEN
        assert view.opened_at == now
        assert view.version >= int(now * 1000)
        assert message is not None and b'"state":"open"' in message["data"]

    on_redis(redis_url, scenario)


def test_failures_older_than_the_window_do_not_count(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        now = time.time()
        await store("a").sync(failures(now - 10.5, now - 10.2), now - 0.5)
        view = await store("b").sync(failures(now - 9.0, now), now)
        assert view.state is CircuitState.CLOSED
        assert view.failures == 2

    on_redis(redis_url, scenario)


def test_a_success_from_any_worker_ends_the_fleets_outage(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        now = time.time()
        assert (await store("a").sync(failures(now - 2.0, now - 1.5), now)).failures == 2
        success = Report(None, failures(now - 0.5).failures, 1, now - 1.0)
        view = await store("b").sync(success, now)  # b's failure came after its success
        assert view.failures == 1
        view = await store("a").sync(failures(now, now), now)
        assert view.state is CircuitState.OPEN  # three since the success

    on_redis(redis_url, scenario)


def test_a_retried_report_does_not_count_its_failures_twice(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        a = store("a")
        now = time.time()
        report = failures(now, now)
        await a.sync(report, now)
        assert (await a.sync(report, now)).failures == 2

    on_redis(redis_url, scenario)


def test_a_claim_on_a_stale_version_loses(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        a, b = store("a"), store("b")
        now = time.time()
        opened = await a.sync(open_claim(0, now), now)
        assert opened.state is CircuitState.OPEN

        closed = await a.sync(closed_claim(opened.version, now), now)
        stale = await b.sync(closed_claim(opened.version, now), now)
        stale_reopen = await b.sync(open_claim(opened.version, now), now)

        assert closed.state is CircuitState.CLOSED and closed.version > opened.version
        assert stale == closed
        assert stale_reopen == closed  # not newer than the close it missed

    on_redis(redis_url, scenario)


def test_an_open_claim_newer_than_the_last_close_reopens(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        a = store("a")
        now = time.time()
        opened = await a.sync(open_claim(0, now - 2), now - 2)
        closed = await a.sync(closed_claim(opened.version, now - 1), now - 1)

        reopened = await a.sync(open_claim(opened.version, now), now)

        assert reopened.state is CircuitState.OPEN
        assert reopened.version > closed.version
        assert reopened.opened_at == now

    on_redis(redis_url, scenario)


async def open_fleet(store: Stores) -> StoreView:
    now = time.time()
    return await store("opener").sync(open_claim(0, now), now)


def test_probe_reservations_are_limited_fleet_wide(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        opened = await open_fleet(store)
        holders = [store(f"w{i}") for i in range(5)]
        now = time.time()

        granted = [await holder.reserve_probe(opened.version, now) for holder in holders]

        assert granted == [True, True, False, False, False]
        assert await holders[0].reserve_probe(opened.version, now)  # a holder may renew its own

    on_redis(redis_url, scenario)


def test_an_expired_reservation_frees_its_probe(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        opened = await open_fleet(store)
        first, second, third = (store(name) for name in ("p1", "p2", "p3"))
        now = time.time()
        ttl = CONFIG.probe_reservation_ttl
        assert await first.reserve_probe(opened.version, now)
        assert await second.reserve_probe(opened.version, now)
        assert not await third.reserve_probe(opened.version, now + ttl - 0.1)

        assert await third.reserve_probe(opened.version, now + ttl + 0.1)

    on_redis(redis_url, scenario)


def test_reservations_need_the_current_open_version(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        opened = await open_fleet(store)
        a = store("a")
        now = time.time()
        assert not await a.reserve_probe(opened.version - 1, now)
        closed = await a.sync(closed_claim(opened.version, now), now)
        assert not await a.reserve_probe(closed.version, now)

    on_redis(redis_url, scenario)


def test_a_store_that_stops_answering_raises_within_the_call_bound(redis_url: str) -> None:
    async def scenario(store: Stores) -> None:
        a = store("a")
        await store.client.execute_command("CLIENT", "PAUSE", "3000", "WRITE")
        began = time.monotonic()
        try:
            with pytest.raises(TimeoutError):
                await a.sync(failures(time.time()), time.time())
        finally:
            await store.client.execute_command("CLIENT", "UNPAUSE")
        assert time.monotonic() - began < 2.5

    on_redis(redis_url, scenario)
