"""The replay feed in one process against a real Redis: what it publishes, at what pace,
and where a second owner resumes (the fleet's failover: test_replay_fleet.py)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
import redis.asyncio as aioredis

from tests.support.archive import NIFTY_INDEX, Session, record_session
from tests.support.instants import ist
from tests.support.pubsub import subscribed
from tickfleet.assignment.plan import Assignment, Placement
from tickfleet.breaker import BreakerConfig, LocalBreaker
from tickfleet.config.settings import Settings
from tickfleet.history.bars import BarBuilder
from tickfleet.instruments import Instrument, OfflineUniverseSource, UniverseSpec
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import SystemClock
from tickfleet.stream.feeds.replay.feed import BACKLOG_MAX, STEP_MAX, ReplayFeed, ReplaySpec, Tokens
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.publisher import PublisherConfig, TickPublisher
from tickfleet.stream.status import EXCLUDED_NOT_RECORDED, StreamStatus
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(60)
IST = ZoneInfo("Asia/Kolkata")
DAY = date(2026, 6, 9)
CH = Channels.for_underlying("ticker", "NIFTY")
MARK = b',"is_replay":true}'


@pytest.fixture(scope="module")
def options() -> list[Instrument]:
    rows = OfflineUniverseSource(*UniverseSpec.configured(Settings())).fetch(DAY)
    near = sorted(
        (o for o in rows if o.instrument_type in ("CE", "PE") and o.expiry is not None),
        key=lambda o: (o.expiry, abs(o.strike - 24000), o.instrument_type),
    )
    return near[:4]


def assigned(tokens: list[int], account: str = "sim-1") -> Assignment:
    return Assignment(version=1, placements={t: Placement(account, 0) for t in tokens})


def spec(root: Path, speed: float, day: date | None = DAY) -> ReplaySpec:
    return ReplaySpec(root, day, speed, None, None, IST)


@dataclass
class Running:
    feed: ReplayFeed
    status: StreamStatus
    publisher: TickPublisher


@contextlib.asynccontextmanager
async def replaying(
    url: str,
    replay: ReplaySpec,
    tokens: Tokens,
    assignment: Assignment | None = None,
    config: PublisherConfig | None = None,
) -> AsyncIterator[Running]:
    """A feed with its own publisher and client, both running; all stopped on the way out
    (the publisher after what the feed offered went out)."""
    client = aioredis.Redis.from_url(url)
    breaker = LocalBreaker("publish", BreakerConfig())
    publisher = TickPublisher(
        client, "account:sim-1", MetricsBuffer(), config or PublisherConfig(), breaker
    )
    outlet = Outlet(publisher, CH, BarBuilder(60))
    status = StreamStatus("account:sim-1", "owner", "host")
    feed = ReplayFeed(
        replay, tokens, {"NIFTY": outlet}, client, status, SystemClock(), lambda: True
    )
    if assignment is not None:
        await feed.apply(assignment)
    tasks = [asyncio.create_task(publisher.run()), asyncio.create_task(feed.run())]
    try:
        yield Running(feed, status, publisher)
    finally:
        tasks[1].cancel()
        await asyncio.gather(tasks[1], return_exceptions=True)
        deadline = time.monotonic() + 5
        while publisher.backlog and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        tasks[0].cancel()
        await asyncio.gather(tasks[0], return_exceptions=True)
        await client.aclose()


@pytest.fixture
def heard(redis_client: redis.Redis) -> Iterator[redis.client.PubSub]:
    with subscribed(redis_client, CH.options) as pubsub:
        pubsub.subscribe(CH.underlying)
        pubsub.get_message(timeout=1)
        yield pubsub


def drain(pubsub: redis.client.PubSub, expect: int, timeout: float) -> list[tuple[float, bytes]]:
    got: list[tuple[float, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(got) < expect and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.05)
        if message:
            got.append((time.monotonic(), message["data"]))
    return got


def replayed(session: Session, kind: str, tokens: set[int]) -> list[bytes]:
    return [r["payload"][:-1] + MARK for r in session.rows(kind, tokens)]


def test_a_replay_at_5x_gives_the_recorded_ticks_of_the_assigned_tokens_in_order_over_a_fifth(
    tmp_path: Path, redis_url: str, heard: redis.client.PubSub, options: list[Instrument]
) -> None:
    session = record_session(tmp_path, options, ist(2026, 6, 9, 10, 0), steps=21, interval=0.5)
    wanted = {o.instrument_token for o in options[:2]}
    expected = replayed(session, "options", wanted)

    async def main() -> list[tuple[float, bytes]]:
        tokens = Tokens("options", "sim-1")
        async with replaying(redis_url, spec(tmp_path, 5), tokens, assigned(sorted(wanted))) as r:
            got = await asyncio.to_thread(drain, heard, len(expected), 10)
            await asyncio.sleep(0.3)  # nothing more comes
            assert r.status.replay_date == "2026-06-09" and r.status.replay_speed == 5
            assert r.status.replay_finished_at is not None
            return got + await asyncio.to_thread(drain, heard, 1, 0.2)

    got = asyncio.run(main())
    assert [payload for _, payload in got] == expected  # only the assigned, in order, marked
    took = got[-1][0] - got[0][0]
    print(f"recorded span {session.span_seconds:.2f}s replayed at 5x in {took:.3f}s")
    assert session.span_seconds / 5 - 0.05 <= took <= session.span_seconds / 5 + 0.1


def test_the_index_is_replayed_on_the_underlying_channel_whatever_the_assignment(
    tmp_path: Path, redis_url: str, heard: redis.client.PubSub, options: list[Instrument]
) -> None:
    session = record_session(tmp_path, options, ist(2026, 6, 9, 10, 0), steps=5, interval=0.1)
    expected = replayed(session, "underlying", {NIFTY_INDEX[2]})

    async def main() -> list[tuple[float, bytes]]:
        tokens = Tokens("underlying", fixed=frozenset({NIFTY_INDEX[2]}))
        async with replaying(redis_url, spec(tmp_path, 0), tokens, assigned([])):
            return await asyncio.to_thread(drain, heard, len(expected) + 1, 2)

    assert [payload for _, payload in asyncio.run(main())] == expected


def test_a_second_owner_resumes_after_the_last_tick_the_first_published(
    tmp_path: Path, redis_url: str, heard: redis.client.PubSub, options: list[Instrument]
) -> None:
    session = record_session(tmp_path, options, ist(2026, 6, 9, 10, 0), steps=41, interval=0.1)
    tokens_ = {o.instrument_token for o in options}
    expected = replayed(session, "options", tokens_)
    tokens = Tokens("options", "sim-1")

    async def main() -> tuple[list[bytes], list[bytes]]:
        async with replaying(redis_url, spec(tmp_path, 1), tokens, assigned(sorted(tokens_))):
            first = await asyncio.to_thread(drain, heard, len(expected) // 2, 10)
        first += await asyncio.to_thread(drain, heard, len(expected), 0.3)  # its last batch
        async with replaying(redis_url, spec(tmp_path, 0), tokens, assigned(sorted(tokens_))):
            second = await asyncio.to_thread(drain, heard, len(expected) - len(first), 10)
            second += await asyncio.to_thread(drain, heard, 1, 0.3)
        return [p for _, p in first], [p for _, p in second]

    first, second = asyncio.run(main())
    assert 0 < len(first) < len(expected)
    assert first + second == expected  # nothing repeated, nothing skipped


def test_an_unpaced_replay_drops_nothing_though_it_outruns_the_publisher(
    tmp_path: Path, redis_url: str, heard: redis.client.PubSub, options: list[Instrument]
) -> None:
    session = record_session(tmp_path, options, ist(2026, 6, 9, 10, 0), steps=3000, interval=0.001)
    tokens_ = {o.instrument_token for o in options}
    expected = replayed(session, "options", tokens_)

    # a buffer of 8000 ticks: an unpaced feed that did not wait on the backlog (STEP_MAX
    # ticks at a time past BACKLOG_MAX) would overflow it with these 12000
    small = PublisherConfig(buffer_max=BACKLOG_MAX + STEP_MAX + 1000)
    assert len(expected) > small.buffer_max

    async def main() -> tuple[list[bytes], int]:
        tokens = Tokens("options", "sim-1")
        chosen = assigned(sorted(tokens_))
        async with replaying(redis_url, spec(tmp_path, 0), tokens, chosen, small) as r:
            got = await asyncio.to_thread(drain, heard, len(expected), 20)
            return [p for _, p in got], r.publisher.dropped

    got, dropped = asyncio.run(main())
    assert dropped == 0 and len(got) == len(expected) and got == expected


def test_a_day_without_recorded_ticks_is_named_and_nothing_streams(
    tmp_path: Path, redis_url: str, heard: redis.client.PubSub, options: list[Instrument]
) -> None:
    record_session(tmp_path, options, ist(2026, 6, 9, 10, 0), steps=3, interval=0.1)

    async def main() -> tuple[str | None, list[tuple[float, bytes]]]:
        missing = spec(tmp_path, 1, date(2026, 6, 8))
        async with replaying(redis_url, missing, Tokens("options", "sim-1"), assigned([1])) as r:
            got = await asyncio.to_thread(drain, heard, 1, 0.5)
            return r.status.unavailable, got

    unavailable, got = asyncio.run(main())
    assert got == []
    assert unavailable is not None and "2026-06-08" in unavailable and str(tmp_path) in unavailable


def test_assigned_tokens_never_recorded_that_day_are_excluded_by_name(
    tmp_path: Path, redis_url: str, options: list[Instrument]
) -> None:
    record_session(tmp_path, options[:2], ist(2026, 6, 9, 10, 0), steps=3, interval=0.1)
    recorded, unrecorded = options[0].instrument_token, options[3].instrument_token

    async def main() -> dict[int, str]:
        tokens = Tokens("options", "sim-1")
        async with replaying(
            redis_url, spec(tmp_path, 0), tokens, assigned([recorded, unrecorded])
        ) as r:
            await asyncio.sleep(0.5)
            return dict(r.feed.excluded)

    assert asyncio.run(main()) == {unrecorded: EXCLUDED_NOT_RECORDED}


def test_without_a_date_the_latest_recorded_session_is_replayed(
    tmp_path: Path, redis_url: str, heard: redis.client.PubSub, options: list[Instrument]
) -> None:
    record_session(tmp_path, options, ist(2026, 6, 8, 10, 0), steps=3, interval=0.1)
    latest = record_session(tmp_path, options, ist(2026, 6, 9, 10, 0), steps=3, interval=0.1)
    # a later day holding only a replay's own ticks is no session
    record_session(
        tmp_path, options, ist(2026, 6, 10, 10, 0), steps=3, interval=0.1, source="replay"
    )
    tokens_ = {o.instrument_token for o in options}
    expected = replayed(latest, "options", tokens_)

    async def main() -> tuple[list[bytes], str | None]:
        tokens = Tokens("options", "sim-1")
        async with replaying(
            redis_url, spec(tmp_path, 0, None), tokens, assigned(sorted(tokens_))
        ) as r:
            got = await asyncio.to_thread(drain, heard, len(expected) + 1, 2)
            return [p for _, p in got], r.status.replay_date

    got, day = asyncio.run(main())
    assert day == "2026-06-09" and got == expected
