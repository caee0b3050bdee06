"""The publisher against a real Redis: batching, the latest-tick hash, the breaker, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from tests.support.proxy import StallingProxy
from tests.support.pubsub import subscribed
from tests.support.redis_server import RedisServer
from tickfleet.breaker import BreakerConfig, CircuitState, LocalBreaker
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import ManualClock
from tickfleet.stream.publisher import PublisherConfig, TickPublisher
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(60)
CH = Channels()


def tick(token: int, seq: int) -> bytes:
    return orjson.dumps({"instrument_token": token, "seq": seq})


def make(
    url: str, breaker: LocalBreaker | None = None, timeout: float = 1.0, may_publish: bool = True
) -> tuple[TickPublisher, MetricsBuffer, aioredis.Redis]:
    client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    metrics = MetricsBuffer()
    publisher = TickPublisher(
        client,
        "account:test",
        metrics,
        PublisherConfig(batch_max=500, timeout_seconds=timeout),
        breaker or LocalBreaker("publish", BreakerConfig(failure_threshold=2)),
        lambda: may_publish,
    )
    return publisher, metrics, client


@pytest.fixture
def subscriber(redis_client: redis.Redis) -> Iterator[redis.client.PubSub]:
    with subscribed(redis_client, CH.options) as pubsub:
        yield pubsub


def drain(pubsub: redis.client.PubSub, expect: int, timeout: float = 5.0) -> list[dict[str, int]]:
    got: list[dict[str, int]] = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message:
            got.append(orjson.loads(message["data"]))
    return got


def test_batches_are_one_round_trip_each_in_order_with_the_latest_per_token(
    redis_url: str, redis_client: redis.Redis, subscriber: redis.client.PubSub
) -> None:
    async def main() -> list[int]:
        publisher, _, client = make(redis_url)
        for seq in range(1200):
            publisher.offer(CH.options, CH.latest_options, str(seq % 10), tick(seq % 10, seq))
        sizes = [await publisher.flush() for _ in range(4)]
        await client.aclose()
        return sizes

    assert asyncio.run(main()) == [500, 500, 200, 0]
    received = drain(subscriber, 1200)
    assert [t["seq"] for t in received] == list(range(1200))
    latest = {
        int(k): orjson.loads(v)["seq"] for k, v in redis_client.hgetall(CH.latest_options).items()
    }
    assert latest == {token: 1190 + token for token in range(10)}


def test_open_breaker_drops_without_io_and_replays_the_newest_tick_per_token(
    redis_url: str, subscriber: redis.client.PubSub
) -> None:
    clock = ManualClock()
    breaker = LocalBreaker(
        "publish", BreakerConfig(failure_threshold=2, recovery_timeout=10), clock
    )

    async def main() -> tuple[int, int, MetricsBuffer]:
        publisher, metrics, client = make(redis_url, breaker)
        breaker.record_failure(RuntimeError("x"))
        breaker.record_failure(RuntimeError("x"))
        assert breaker.state is CircuitState.OPEN
        for seq in range(30):
            publisher.offer(CH.options, CH.latest_options, str(seq % 3), tick(seq % 3, seq))
        dropped = await publisher.flush()
        held = publisher.held
        clock.advance(10)  # recovery timeout: the next flush is the half-open probe
        publisher.offer(CH.options, CH.latest_options, "0", tick(0, 100))
        await publisher.flush()  # probe succeeds -> closed; token 0 is now newer than held
        assert breaker.state is CircuitState.CLOSED
        await publisher.flush()  # replay of the held newest ticks
        await client.aclose()
        return dropped, held, metrics

    dropped, held, metrics = asyncio.run(main())
    assert dropped == 0 and held == 3
    pending = metrics.pending()
    assert pending[("redis_circuit_open_drops_total", "[]")] == 30
    assert pending[("redis_circuit_replayed_total", "[]")] == 2
    received = drain(subscriber, 4, timeout=1.0)
    assert [t["seq"] for t in received] == [100, 28, 29], "never an older tick after a newer one"


def test_a_stalled_network_costs_one_timeout_per_flush_never_more(
    redis_server: RedisServer, redis_url: str
) -> None:
    proxy = StallingProxy(redis_server.port).start()

    async def main() -> list[float]:
        publisher, metrics, client = make(proxy.url, timeout=0.3)
        publisher.offer(CH.options, CH.latest_options, "1", tick(1, 0))
        assert await publisher.flush() == 1
        proxy.stall()
        took = []
        for seq in range(3):
            publisher.offer(CH.options, CH.latest_options, "1", tick(1, seq))
            started = time.perf_counter()
            assert await publisher.flush() == 0
            took.append(time.perf_counter() - started)
        assert metrics.pending()[("redis_publish_failures_total", "[]")] == 2
        await client.aclose()
        return took

    try:
        took = asyncio.run(main())
    finally:
        proxy.close()
    # two failures trip the breaker (threshold 2); the third flush is dropped at once
    assert all(t < 0.3 + 0.25 for t in took[:2]), took
    assert took[2] < 0.01, took


def test_a_stream_without_its_lease_publishes_nothing(
    redis_url: str, subscriber: redis.client.PubSub
) -> None:
    async def main() -> int:
        publisher, _, client = make(redis_url, may_publish=False)
        publisher.offer(CH.options, CH.latest_options, "1", tick(1, 0))
        sent = await publisher.flush()
        await client.aclose()
        return sent

    assert asyncio.run(main()) == 0
    assert drain(subscriber, 1, timeout=0.5) == []
