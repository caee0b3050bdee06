"""``TickFanout`` against a real redis-server: one subscription for every watcher, frames
that keep the latest tick of each token, a resync for a watcher that fell behind or a
changed chain, and a Redis stop reported, told to watchers and recovered from; on a Redis
Cluster, each underlying's watchers hear its own sharded channels."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import orjson
import pytest
import redis

from tests.support.polling import await_until
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer
from tickfleet.chain.fanout import FanoutConfig, Frame, TickFanout
from tickfleet.runtime.connections import sync_publish_client
from tickfleet.ticks.channels import Channels
from tickfleet.ticks.subscription import AsyncTickListener

pytestmark = pytest.mark.timeout(60)

CHANNELS = Channels("test:chain")
FAST = FanoutConfig(
    frame_seconds=0.05, status_seconds=0.1, idle_seconds=0.3, ping_seconds=0.2,
    silence_seconds=1.0, retry_seconds=0.1,
)  # fmt: skip


def _fanout(
    url: str, reported: list[Exception], status: dict[str, Any], config: FanoutConfig = FAST
) -> TickFanout:
    return TickFanout(
        lambda: AsyncTickListener.open(url, 2.0, "test/chain"),
        lambda: dict(status),
        reported.append,
        config,
    )


def _tick(token: int, price: float) -> bytes:
    return orjson.dumps({"instrument_token": token, "last_price": price, "expiry": "2026-06-11"})


def _subscribers(client: redis.Redis) -> int:
    counts = client.pubsub_numsub(CHANNELS.options)
    return int(counts[0][1])


def _watch(fanout: TickFanout) -> AsyncGenerator[Frame, None]:
    seat = fanout.admit(CHANNELS)
    assert seat is not None
    return fanout.watch(seat)


async def _collect(frames: AsyncIterator[Frame], into: list[Frame]) -> None:
    async for frame in frames:
        into.append(frame)


def test_many_watchers_share_one_subscription_and_see_the_latest_tick_of_each_token(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def scenario() -> None:
        reported: list[Exception] = []
        fanout = _fanout(redis_url, reported, {"status": "ok"})
        client = redis_client
        seen: list[list[Frame]] = [[] for _ in range(20)]
        tasks = [asyncio.create_task(_collect(_watch(fanout), got)) for got in seen]
        try:
            await await_until(lambda: _ready(fanout), 5, what="the subscription")
            assert _subscribers(client) == 1 and fanout.watchers == 20
            for price in range(1, 101):  # 100 ticks of token 7 inside one frame or two
                client.publish(CHANNELS.options, _tick(7, float(price)))
            client.publish(CHANNELS.options, _tick(8, 5.0))
            await await_until(lambda: _heard(seen, 8), 5, what="token 8 in every watcher")
            for got in seen:
                sevens = [t for f in got for t in f.options if t["instrument_token"] == 7]
                assert sevens[-1]["last_price"] == 100.0
                assert len(sevens) < 100  # conflated: a frame carries the latest only
                assert any(f.status == {"status": "ok"} for f in got)
            before = [len(got) for got in seen]
            client.publish(CHANNELS.events, b'{"event": "subscription_created"}')
            await await_until(lambda: _resynced(seen, before), 5, what="a resync after an event")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await await_until(lambda: _unsubscribed(client), 5, what="the idle subscription to go")
        await fanout.aclose()
        assert reported == []

    asyncio.run(scenario())


def _ready(fanout: TickFanout) -> bool:
    return CHANNELS in fanout.subscribed


def _heard(seen: list[list[Frame]], token: int) -> bool:
    return all(any(t["instrument_token"] == token for f in got for t in f.options) for got in seen)


def _resynced(seen: list[list[Frame]], since: list[int]) -> bool:
    return all(any(f.resync for f in got[n:]) for got, n in zip(seen, since, strict=True))


def _unsubscribed(client: redis.Redis) -> bool:
    return _subscribers(client) == 0


def test_a_watcher_that_falls_behind_is_told_to_resync_not_queued_for(redis_url: str) -> None:
    async def scenario() -> None:
        fanout = _fanout(redis_url, [], {})
        frames = _watch(fanout)
        try:
            first = await anext(frames)
            await asyncio.sleep(FAST.frame_seconds * 6)  # five frames or more pass unread
            late = await anext(frames)
            assert late.seq > first.seq + 1
            assert late.resync and late.options == []
        finally:
            await frames.aclose()
            await fanout.aclose()
        assert fanout.watchers == 0

    asyncio.run(scenario())


def test_a_stopped_redis_is_reported_told_to_watchers_and_recovered_from(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()

    async def scenario() -> None:
        reported: list[Exception] = []
        fanout = _fanout(server.url, reported, {})
        got: list[Frame] = []
        task = asyncio.create_task(_collect(_watch(fanout), got))
        try:
            await await_until(lambda: _ready(fanout), 5, what="the subscription")
            await asyncio.to_thread(server.stop)
            await await_until(
                lambda: _lost(got, reported), 5, what="a frame saying the feed is lost"
            )
            await asyncio.to_thread(server.start)
            await await_until(lambda: _ready(fanout), 10, what="the subscription again")
            publisher = redis.Redis.from_url(server.url)
            try:
                publisher.publish(CHANNELS.options, _tick(9, 1.5))
            finally:
                publisher.close()
            await await_until(lambda: _has(got, 9), 5, what="a tick after the restart")
            assert got[-1].connected
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await fanout.aclose()
        assert all(isinstance(e, redis.ConnectionError | ConnectionError) for e in reported)

    asyncio.run(scenario())


def _lost(got: list[Frame], reported: list[Exception]) -> bool:
    return bool(reported) and any(not f.connected and f.resync for f in got)


def _has(got: list[Frame], token: int) -> bool:
    return any(t["instrument_token"] == token for f in got for t in f.options)


def test_seats_are_counted_when_admitted_not_when_read_and_freed_once(redis_url: str) -> None:
    async def scenario() -> None:
        reported: list[Exception] = []
        fanout = _fanout(redis_url, reported, {}, replace(FAST, max_watchers=3))
        try:
            seats = [fanout.admit(CHANNELS) for _ in range(5)]  # no frame read by any of them
            assert [s is not None for s in seats] == [True, True, True, False, False]
            assert fanout.watchers == 3
            await await_until(lambda: _ready(fanout), 5, what="the subscription of seats")
            first = seats[0]
            assert first is not None
            first.release()
            first.release()  # a second release frees nothing more
            assert fanout.watchers == 2
            again = fanout.admit(CHANNELS)
            assert again is not None and fanout.admit(CHANNELS) is None
            frames = fanout.watch(again)
            await anext(frames)
            await frames.aclose()  # the end of watching releases its seat
            again.release()
            assert fanout.watchers == 2
            for seat in seats[1:3]:
                assert seat is not None
                seat.release()
            assert fanout.watchers == 0
        finally:
            await fanout.aclose()
        assert reported == []

    asyncio.run(scenario())


def test_on_a_redis_cluster_each_underlyings_watchers_hear_its_own_sharded_channels(
    redis_cluster: RedisClusterServers,
) -> None:
    nifty, bank = (
        Channels.for_underlying("ticker", n, sharded=True) for n in ("NIFTY", "BANKNIFTY")
    )

    async def scenario() -> None:
        reported: list[Exception] = []
        fanout = TickFanout(
            lambda: AsyncTickListener.open(redis_cluster.url, 2.0, "test/chain"),
            dict,
            reported.append,
            FAST,
        )
        heard: dict[Channels, list[Frame]] = {nifty: [], bank: []}
        tasks = []
        for channels, got in heard.items():
            seat = fanout.admit(channels)
            assert seat is not None
            tasks.append(asyncio.create_task(_collect(fanout.watch(seat), got)))
        publisher = sync_publish_client(redis_cluster.url, 2.0)
        try:
            await await_until(lambda: fanout.subscribed == {nifty, bank}, 10, what="both")
            for channels, token in ((nifty, 1), (bank, 2)):
                await asyncio.to_thread(publisher.spublish, channels.options, _tick(token, 1.0))
            await await_until(lambda: _has(heard[nifty], 1) and _has(heard[bank], 2), 5)
            assert not _has(heard[nifty], 2) and not _has(heard[bank], 1)
        finally:
            publisher.close()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await await_until(lambda: not fanout.subscriptions, 5, what="both to go once idle")
        await fanout.aclose()
        assert reported == []

    asyncio.run(scenario())
