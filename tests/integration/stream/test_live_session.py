"""A live feed's session against real Redis and the local Kite server: refusals, new tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio as aioredis
from pydantic import SecretStr

from producers.kite_sim.local_server import KiteServer
from tests.support.polling import await_until
from tickfleet.accounts.access_tokens import Credentials, post_token, read_sessions
from tickfleet.accounts.access_tokens import SessionStore as Store
from tickfleet.keyspace.keys import Keys
from tickfleet.kite.connection import ConnectionConfig
from tickfleet.kite.packets import Tick
from tickfleet.kite.pool import ConnectionPool
from tickfleet.kite.tokens import SEGMENT_IDS, encode_token
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import SystemClock
from tickfleet.stream.feeds.live.session import LiveSession, pool_connections
from tickfleet.stream.status import StreamStatus
from tickfleet.supervision.cancel import cancel_and_wait

pytestmark = pytest.mark.timeout(60)

KEYS = Keys("test:")
CONFIG = ConnectionConfig(
    stale_seconds=1.0, connect_timeout=2.0, backoff_base=0.05, backoff_max=0.2
)
TOKEN = encode_token(52_000, SEGMENT_IDS["NFO"])
CHECK = 0.2
T = TypeVar("T")


@pytest.fixture
def kite() -> Iterator[KiteServer]:
    with KiteServer({"key": "day-1"}, interval=0.02, heartbeat_interval=0.1) as server:
        server.set_price(TOKEN, 42.5)
        yield server


class Feed:
    """A session, a pool with one token, and the ticks it hears, for one account."""

    def __init__(self, client: aioredis.Redis, kite: KiteServer, configured: str | None) -> None:
        self.heard: list[tuple[float, Tick]] = []
        self.status = StreamStatus("account:a", "owner", "host")
        self.metrics = MetricsBuffer()
        self.pool = ConnectionPool(
            "account:a", CONFIG, self._hear, SystemClock(), self.metrics, self.status.connections
        )
        self.pool.plan({0: {TOKEN: "ltp"}})
        credentials = (
            Credentials("key", SecretStr(configured), "configuration") if configured else None
        )
        self.session = LiveSession(
            Store(client, KEYS, "a"), lambda: credentials, CHECK, self.status, SystemClock(),
            self.metrics,
        )  # fmt: skip
        self.url = kite.url

    def _hear(self, ticks: list[Tick]) -> None:
        self.heard.extend((time.monotonic(), t) for t in ticks)

    def ticking_since(self, moment: float) -> bool:
        return any(at > moment for at, _ in self.heard)

    async def run(self) -> None:
        await self.session.run(pool_connections(self.pool, self.url))


def run(test: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(test, 40))


def test_a_refused_token_is_not_retried_and_a_posted_one_restores_ticks(
    kite: KiteServer, redis_url: str, redis_client: redis.Redis
) -> None:
    async def scenario() -> dict[str, float]:
        async with aioredis.Redis.from_url(redis_url) as client:
            feed = Feed(client, kite, configured="day-1")
            task = asyncio.create_task(feed.run())
            try:
                await await_until(lambda: feed.ticking_since(0), 5, what="first ticks")
                await await_until(lambda: feed.status.session == "valid", 5, what="valid")
                kite.set_access_token("day-2", api_key="key")  # the night passes
                expired = time.monotonic()
                await asyncio.to_thread(kite.drop_connections)
                await await_until(lambda: feed.status.session == "refused", 5, what="refused")
                refused_at = time.monotonic()
                await asyncio.sleep(1.0)
                refusals = kite.refused_handshakes
                post_token(
                    redis_client,
                    KEYS,
                    "a",
                    Credentials("key", SecretStr("day-2"), "admin"),
                    time.time(),
                )
                posted = time.monotonic()
                await await_until(lambda: feed.ticking_since(posted), 5, what="ticks again")
                return {
                    "refused_after": refused_at - expired,
                    "refusals": refusals,
                    "back_after": time.monotonic() - posted,
                    "unavailable": float(feed.status.unavailable is None),
                }
            finally:
                await cancel_and_wait({task}, 5)

    outcome = run(scenario())
    assert outcome["refusals"] == 1, "a refused token is never retried"
    assert outcome["refused_after"] < 2.0
    assert outcome["back_after"] < CHECK + 2.0
    assert outcome["unavailable"] == 1.0
    [state] = read_sessions(redis_client, KEYS, ["a"]).values()
    assert (state.verdict, state.source) == ("valid", "admin")


def test_a_token_posted_while_streaming_replaces_the_running_one(
    kite: KiteServer, redis_url: str, redis_client: redis.Redis
) -> None:
    async def scenario() -> int:
        async with aioredis.Redis.from_url(redis_url) as client:
            feed = Feed(client, kite, configured="day-1")
            task = asyncio.create_task(feed.run())
            try:
                await await_until(lambda: feed.ticking_since(0), 5, what="first ticks")
                kite.set_access_token("day-2", api_key="key")  # open sockets keep streaming
                post_token(
                    redis_client,
                    KEYS,
                    "a",
                    Credentials("key", SecretStr("day-2"), "admin"),
                    time.time(),
                )
                await await_until(lambda: len(kite.clients()) == 2, 5, what="a new connection")
                moved = time.monotonic()
                await await_until(lambda: feed.ticking_since(moved), 5, what="ticks on it")
                return sum(c.open for c in kite.clients())
            finally:
                await cancel_and_wait({task}, 5)

    assert run(scenario()) == 1, "the old connection was closed"
    assert kite.refused_handshakes == 0


def test_without_any_token_the_stream_says_so_and_waits(kite: KiteServer, redis_url: str) -> None:
    async def scenario() -> tuple[str | None, str | None]:
        async with aioredis.Redis.from_url(redis_url) as client:
            feed = Feed(client, kite, configured=None)
            task = asyncio.create_task(feed.run())
            try:
                await await_until(lambda: feed.status.unavailable is not None, 5, what="said")
                await asyncio.sleep(3 * CHECK)
                return feed.status.session, feed.status.unavailable
            finally:
                await cancel_and_wait({task}, 5)

    session, unavailable = run(scenario())
    assert session == "missing"
    assert "no access token for account a" in (unavailable or "")
    assert kite.clients() == []
