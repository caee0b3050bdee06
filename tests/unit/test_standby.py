"""The hot standby's rules, against the session's redis-server (no fleet process)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
import redis.asyncio as aioredis

from tickfleet.assignment import channel as control
from tickfleet.control.presence import WorkerRecord, capacity
from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import STAND_DOWN, standby_host, standby_marker
from tickfleet.runtime.clock import SystemClock
from tickfleet.runtime.lease import AsyncLease
from tickfleet.stream.lease_keeper import LeaseKeeper
from tickfleet.stream.standby import POLL_SECONDS, Standby

pytestmark = pytest.mark.timeout(30)
KEYS = Keys("standby-test:")
STREAM = "account:a"


def candidate(client: aioredis.Redis, owner: str, hostname: str) -> tuple[LeaseKeeper, Standby]:
    lease = AsyncLease(client, KEYS.stream_lease(STREAM), 5.0, owner, KEYS.stream_epoch(STREAM))
    keeper = LeaseKeeper(lease, 1.0, SystemClock())
    return keeper, Standby(client, KEYS, STREAM, hostname, keeper)


async def owned_by(client: aioredis.Redis, owner: str, hostname: str) -> LeaseKeeper:
    keeper, _ = candidate(client, owner, hostname)
    assert await keeper.acquire()
    await client.hset(KEYS.stream_status(STREAM), mapping={"owner": owner, "hostname": hostname})
    return keeper


def test_one_standby_per_stream_and_it_takes_over_within_a_poll_of_the_release(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def main() -> float:
        client = aioredis.Redis.from_url(redis_url)
        owner = await owned_by(client, "owner", "stream-a@h")
        keeper, standby = candidate(client, "standby", "stream-b@h")
        assert not await keeper.acquire()
        assert await standby.claim()
        _, second = candidate(client, "second", "stream-c@h")
        assert not await second.claim(), "the stream has its standby"
        waiting = asyncio.create_task(standby.wait())
        await asyncio.sleep(0.5)
        assert standby_host(await client.get(KEYS.stream_standby(STREAM))) == "stream-b@h"
        released = time.monotonic()
        await owner.release()
        assert await waiting == "took over"
        took = time.monotonic() - released
        assert keeper.may_publish() and keeper.epoch > owner.epoch
        assert await client.get(KEYS.stream_standby(STREAM)) is None, "no longer a standby"
        await client.aclose()
        return took

    assert asyncio.run(main()) < POLL_SECONDS + 0.2


def test_no_standby_on_its_owners_worker(redis_url: str) -> None:
    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url)
        await owned_by(client, "owner", "stream-a@h")
        _, standby = candidate(client, "standby", "stream-a@h")
        assert not await standby.claim()
        assert await client.get(KEYS.stream_standby(STREAM)) is None
        await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("told", ["stand down", "shutdown"])
def test_a_standby_ends_when_told_and_leaves_no_marker(redis_url: str, told: str) -> None:
    async def main() -> str:
        client = aioredis.Redis.from_url(redis_url)
        await owned_by(client, "owner", "stream-a@h")
        _, standby = candidate(client, "standby", "stream-b@h")
        assert await standby.claim()
        waiting = asyncio.create_task(standby.wait())
        await asyncio.sleep(0.3)  # subscribed to the control channel by now
        if told == "stand down":
            await client.set(KEYS.stream_standby(STREAM), STAND_DOWN, xx=True)
        else:
            message = control.encode(control.Shutdown(hostname="stream-b@h"))
            await client.publish(KEYS.control_channel, message)
        outcome = await asyncio.wait_for(waiting, 5)
        await standby.release()
        if told == "shutdown":
            assert await client.get(KEYS.stream_standby(STREAM)) is None
        await client.aclose()
        return outcome

    expected = {"stand down": "stood down", "shutdown": "stopped"}[told]
    assert asyncio.run(main()) == expected


def test_standbys_take_pool_slots_and_need_room_on_another_worker() -> None:
    now = 1000.0
    workers = [
        WorkerRecord("stream-a@h", 1, 2, started_at=now, seen_at=now),
        WorkerRecord("stream-b@h", 2, 2, started_at=now, seen_at=now),
    ]
    room = capacity(workers, {"stream-a@h": 1, "stream-b@h": 2}, now)
    assert room.free_slots == 1
    assert room.roomiest_besides("stream-b@h") == "stream-a@h"
    assert room.roomiest_besides("stream-a@h") is None
    assert standby_host(standby_marker("stream-b@h", "x@h:1:ab")) == "stream-b@h"
    assert standby_host(STAND_DOWN) is None and standby_host(None) is None
