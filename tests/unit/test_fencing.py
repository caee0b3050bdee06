"""Lease epochs and the publisher's fence, against the session's redis-server.

The fleet-level proof (an owner frozen past its lease, then resumed) is in
``tests/integration/stream/test_streaming_fleet.py``; here each part is shown on its own,
including the case a frozen process can only hit by chance: a holder that passed its
``may_publish`` check before its successor took over, and sends afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest
import redis
import redis.asyncio as aioredis

from tests.support.pubsub import subscribed
from tickfleet.breaker import BreakerConfig, LocalBreaker
from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import SystemClock
from tickfleet.runtime.lease import AsyncLease
from tickfleet.stream.lease_keeper import LeaseKeeper, LeaseLostError
from tickfleet.stream.publisher import Fence, PublisherConfig, TickPublisher
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(30)
KEYS = Keys("fence-test:")
CH = Channels("fence-test")
STREAM = "account:a"


def keeper(client: aioredis.Redis, owner: str, ttl: float = 1.0) -> LeaseKeeper:
    lease = AsyncLease(client, KEYS.stream_lease(STREAM), ttl, owner, KEYS.stream_epoch(STREAM))
    return LeaseKeeper(lease, ttl / 4, SystemClock())


def publisher(client: aioredis.Redis, holder: LeaseKeeper, metrics: MetricsBuffer) -> TickPublisher:
    return TickPublisher(
        client,
        STREAM,
        metrics,
        PublisherConfig(),
        LocalBreaker("publish", BreakerConfig()),
        lambda: True,  # a stale view: the holder has not noticed it lost the lease
        Fence(CH.fence(STREAM), holder.epoch, holder.fenced),
    )


@pytest.fixture
def subscriber(redis_client: redis.Redis) -> Iterator[redis.client.PubSub]:
    with subscribed(redis_client, CH.options) as pubsub:
        yield pubsub


def heard(pubsub: redis.client.PubSub) -> list[str]:
    out = []
    while (message := pubsub.get_message(timeout=0.3)) is not None:
        out.append(orjson.loads(message["data"])["by"])
    return out


def test_every_acquisition_draws_a_greater_epoch_even_after_redis_lost_the_counter(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def main() -> list[int]:
        client = aioredis.Redis.from_url(redis_url)
        epochs = []
        for owner in ("a", "b", "c"):
            holder = keeper(client, owner)
            assert await holder.acquire()
            epochs.append(holder.epoch)
            await holder.release()
            if owner == "b":
                await client.delete(KEYS.stream_epoch(STREAM))  # an emptied fleet Redis
        second = keeper(client, "d")
        held = keeper(client, "e")
        assert await second.acquire() and not await held.acquire() and held.epoch == 0
        await client.aclose()
        return [*epochs, second.epoch]

    epochs = asyncio.run(main())
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs), epochs
    assert epochs[0] > 1_600_000_000_000_000  # at least Redis's clock in µs: survives a reset


def test_a_stale_holder_publishes_nothing_once_its_successor_has(
    redis_url: str, redis_client: redis.Redis, subscriber: redis.client.PubSub
) -> None:
    async def main() -> tuple[LeaseKeeper, MetricsBuffer]:
        client = aioredis.Redis.from_url(redis_url)
        old, new = keeper(client, "old", ttl=0.3), keeper(client, "new", ttl=5.0)
        old_metrics, new_metrics = MetricsBuffer(), MetricsBuffer()
        assert await old.acquire()
        stale = publisher(client, old, old_metrics)
        stale.offer(CH.options, CH.latest_options, "1", b'{"by": "old"}')
        assert await stale.flush() == 1  # before the takeover: published
        await asyncio.sleep(0.4)  # the old holder froze past its TTL
        assert await new.acquire() and new.epoch > old.epoch
        fresh = publisher(client, new, new_metrics)
        fresh.offer(CH.options, CH.latest_options, "1", b'{"by": "new"}')
        assert await fresh.flush() == 1
        stale.offer(CH.options, CH.latest_options, "1", b'{"by": "old"}')
        assert await stale.flush() == 0  # it woke up and sends: refused, atomically
        fresh.offer(CH.options, CH.latest_options, "1", b'{"by": "new"}')
        assert await fresh.flush() == 1
        assert not old.may_publish()
        with pytest.raises(LeaseLostError, match="fenced"):
            await old.run()
        await client.aclose()
        return old, old_metrics

    old, metrics = asyncio.run(main())
    assert heard(subscriber) == ["old", "new", "new"]
    latest = orjson.loads(redis_client.hget(CH.latest_options, "1") or b"{}")
    assert latest == {"by": "new"}
    fenced = {k: v for k, v in metrics.pending().items() if k[0] == "publish_fenced_total"}
    assert list(fenced.values()) == [1.0], fenced
    assert int(redis_client.get(CH.fence(STREAM)) or 0) > old.epoch
