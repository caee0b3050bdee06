"""The underlying snapshot in Redis: one atomic value that only a newer version replaces.

Writers and readers run as separate processes against the real redis-server, as the
underlying stream and the option streams do in the fleet.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import pytest
import redis
import redis.asyncio as aioredis

from tickfleet.keyspace.keys import Keys
from tickfleet.market.snapshot import MockUnderlyingSnapshot, RedisSnapshotStore

pytestmark = [pytest.mark.timeout(120), pytest.mark.processes]

T0 = 1_736_173_800.0
KEY = Keys().market_snapshot("NIFTY")


def snap(version: int) -> MockUnderlyingSnapshot:
    """A snapshot whose every field is derived from its version, so mixtures show."""
    price = 24_000.0 + version % 97
    return MockUnderlyingSnapshot(
        version, "NIFTY 50", price, 24_000.0, max(price, 24_100.0), 23_900.0, 23_950.0,
        version * 65, T0 + version,
    )  # fmt: skip


@dataclass
class ReadLog:
    reads: int = 0
    versions: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    last_version: int = 0

    def see(self, raw: bytes | str | None) -> None:
        if raw is None:
            return
        try:
            got = MockUnderlyingSnapshot.from_json(raw)
        except Exception as exc:  # a partial value would not parse
            self.problems.append(f"unreadable value: {exc!r}")
            return
        self.reads += 1
        self.versions.add(got.version)
        if got != snap(got.version):
            self.problems.append(f"v{got.version}: fields of another snapshot")
        if got.version < self.last_version:
            self.problems.append(f"v{got.version} after v{self.last_version}")
        self.last_version = max(self.last_version, got.version)


@dataclass
class Race:
    """Everything the racing processes share; ``start`` opens once all are ready."""

    url: str
    ready: Queue[bool]
    start: Event
    stop: Event
    accepted: Queue[int]
    logs: Queue[ReadLog]

    def wait_for_start(self) -> None:
        self.ready.put(True)
        self.start.wait(60)


def write_versions(race: Race, versions: list[int]) -> None:
    async def main() -> int:
        async with aioredis.Redis.from_url(race.url) as client:
            store = RedisSnapshotStore(client, KEY)
            await client.ping()  # connected before the race starts
            await asyncio.to_thread(race.wait_for_start)
            return sum([await store.write(snap(v)) for v in versions])

    race.accepted.put(asyncio.run(main()))


def read_until(race: Race) -> None:
    client, log = redis.Redis.from_url(race.url), ReadLog()
    client.ping()
    race.wait_for_start()
    while not race.stop.is_set():
        log.see(client.get(KEY))
    log.see(client.get(KEY))
    race.logs.put(log)


def test_round_trip_and_empty(redis_url: str, redis_client: redis.Redis) -> None:
    async def main() -> None:
        async with aioredis.Redis.from_url(redis_url) as client:
            store = RedisSnapshotStore(client, KEY)
            assert await store.read() is None
            assert await store.write(snap(3)) is True
            assert await store.read() == snap(3)

    asyncio.run(main())
    assert redis_client.type(KEY) == b"string"


def test_older_or_equal_versions_are_refused(redis_url: str) -> None:
    async def main() -> None:
        async with aioredis.Redis.from_url(redis_url) as client:
            store = RedisSnapshotStore(client, KEY)
            assert await store.write(snap(10))
            assert await store.write(snap(10)) is False
            assert await store.write(snap(9)) is False
            assert await store.read() == snap(10)
            assert await store.write(snap(11))
            assert await store.read() == snap(11)

    asyncio.run(main())


def test_an_unreadable_stored_value_is_replaced(redis_url: str, redis_client: redis.Redis) -> None:
    redis_client.set(KEY, b"{not json")

    async def main() -> None:
        async with aioredis.Redis.from_url(redis_url) as client:
            store = RedisSnapshotStore(client, KEY)
            assert await store.write(snap(1))
            assert await store.read() == snap(1)

    asyncio.run(main())


def test_the_reader_check_notices_a_version_going_back(redis_client: redis.Redis) -> None:
    log = ReadLog()
    for version in (10, 5):  # plain SET, as a store without the script would do
        redis_client.set(KEY, snap(version).to_json())
        log.see(redis_client.get(KEY))
    log.see(b'{"version": 1')
    assert log.problems[0] == "v5 after v10" and "unreadable" in log.problems[1]


def test_processes_racing_never_move_the_stored_version_back(redis_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    race = Race(redis_url, ctx.Queue(), ctx.Event(), ctx.Event(), ctx.Queue(), ctx.Queue())
    plans = [
        list(range(1, 4_002, 2)),  # odd versions, rising
        list(range(2, 4_001, 2)),  # even versions, rising: interleaves with the first
        list(range(1_001, 0, -2)),  # a stale writer going backwards
    ]
    writers = [ctx.Process(target=write_versions, args=(race, plan)) for plan in plans]
    readers = [ctx.Process(target=read_until, args=(race,)) for _ in range(3)]
    for process in writers + readers:
        process.start()
    for _ in writers + readers:
        race.ready.get(timeout=60)
    race.start.set()
    totals = [race.accepted.get(timeout=60) for _ in writers]
    race.stop.set()
    reports = [race.logs.get(timeout=60) for _ in readers]
    for process in writers + readers:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert [p for log in reports for p in log.problems] == []
    assert all(log.reads > 0 for log in reports)
    assert len(set().union(*(log.versions for log in reports))) > 10
    assert 0 < sum(totals) < sum(len(p) for p in plans)
    final = redis.Redis.from_url(redis_url).get(KEY)
    assert final is not None and MockUnderlyingSnapshot.from_json(final) == snap(4_001)


async def race_in_tasks(url: str, total: int) -> list[ReadLog]:
    """One writer and four readers as tasks on one loop, as a stream's coroutines are."""
    done = asyncio.Event()
    logs = [ReadLog() for _ in range(4)]
    async with aioredis.Redis.from_url(url) as client:
        store = RedisSnapshotStore(client, KEY)

        async def write() -> None:
            for version in range(1, total + 1):
                await store.write(snap(version))
            done.set()

        async def read(log: ReadLog) -> None:
            while not done.is_set():
                log.see(await client.get(KEY))
            log.see(await client.get(KEY))

        await asyncio.gather(write(), *(read(log) for log in logs))
    return logs


def test_asyncio_tasks_see_whole_snapshots_in_order(redis_url: str) -> None:
    logs = asyncio.run(race_in_tasks(redis_url, 500))
    assert [p for log in logs for p in log.problems] == []
    assert all(log.reads > 0 and log.last_version == 500 for log in logs)
