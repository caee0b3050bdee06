"""One Kite connection against the local Kite server: ticks, changes, drops, stalls, 403s."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import pytest

from producers.kite_sim.local_server import KiteServer
from tests.support.polling import await_until
from tests.support.ports import free_port
from tickfleet.kite.connection import (
    ConnectionConfig,
    ConnectionStatus,
    KiteConnection,
    SessionRefusedError,
)
from tickfleet.kite.packets import Tick, TickMode
from tickfleet.kite.tokens import SEGMENT_IDS, encode_token
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import SystemClock
from tickfleet.supervision.cancel import cancel_and_wait

pytestmark = pytest.mark.timeout(60)

STALE = 0.5
CONFIG = ConnectionConfig(
    stale_seconds=STALE, connect_timeout=2.0, backoff_base=0.05, backoff_max=0.4
)
T0, T1, T2 = (encode_token(41_000 + i, SEGMENT_IDS["NFO"]) for i in range(3))
SECRET = "s3cr3t-access-token"
T = TypeVar("T")


class Heard:
    """Every tick the connection handed over, with when it arrived."""

    def __init__(self) -> None:
        self.ticks: list[tuple[float, Tick]] = []

    def __call__(self, ticks: list[Tick]) -> None:
        now = time.monotonic()
        self.ticks.extend((now, t) for t in ticks)

    def tokens(self, since: float = 0.0) -> set[int]:
        return {t.instrument_token for at, t in self.ticks if at >= since}

    def last(self, token: int) -> Tick:
        return next(t for _, t in reversed(self.ticks) if t.instrument_token == token)


@pytest.fixture
def kite() -> Iterator[KiteServer]:
    with KiteServer({"key": SECRET}, interval=0.02, heartbeat_interval=0.1) as server:
        yield server


def connection(
    url: str, heard: Heard, wanted: Mapping[int, TickMode], metrics: MetricsBuffer | None = None
) -> KiteConnection:
    made = KiteConnection(
        "test/0", url, CONFIG, heard, ConnectionStatus(0), SystemClock(),
        metrics or MetricsBuffer(),
    )  # fmt: skip
    made.want(wanted)
    return made


@asynccontextmanager
async def running(made: KiteConnection) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(made.run())
    try:
        yield task
    finally:
        assert not await cancel_and_wait({task}, 5.0), "the connection ignored cancellation"


def run(test: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(test, 40))


def test_ticks_carry_the_servers_prices_in_each_tokens_mode(kite: KiteServer) -> None:
    prices = {T0: 101.25, T1: 55.5, T2: 7.05}
    for token, price in prices.items():
        kite.set_price(token, price)
    heard = Heard()
    made = connection(kite.connect_url(), heard, {T0: "full", T1: "quote", T2: "ltp"})

    async def scenario() -> tuple[object, int]:
        async with running(made):
            await await_until(lambda: heard.tokens() == set(prices), 5, what="all three tick")
            return await asyncio.to_thread(kite.subscriptions), made.status.subscribed

    subscribed, reported = run(scenario())
    assert subscribed == [{T0: "full", T1: "quote", T2: "ltp"}] and reported == 3
    assert {t: heard.last(t).last_price for t in prices} == prices
    assert [heard.last(t).mode for t in (T0, T1, T2)] == ["full", "quote", "ltp"]
    assert heard.last(T0).depth is not None and heard.last(T1).depth is None
    assert made.status.reconnects == 0 and made.status.subscribed == 0  # stopped now


def test_changes_are_sent_on_the_open_socket(kite: KiteServer) -> None:
    heard = Heard()
    made = connection(kite.connect_url(), heard, {T0: "quote", T1: "quote"})

    async def scenario() -> float:
        async with running(made):
            await await_until(lambda: heard.tokens() == {T0, T1}, 5, what="first ticks")
            made.want({T0: "full", T2: "ltp"})
            await await_until(
                lambda: kite.subscriptions() == [{T0: "full", T2: "ltp"}], 5, what="the change"
            )
            changed = time.monotonic()
            await asyncio.sleep(0.3)
            return changed

    changed = run(scenario())
    assert heard.tokens(since=changed + 0.1) == {T0, T2}  # T1 no longer ticks
    assert heard.last(T0).mode == "full"
    assert len(kite.clients()) == 1 and made.status.reconnects == 0


def test_a_dropped_connection_reconnects_and_resubscribes_every_token_in_its_mode(
    kite: KiteServer,
) -> None:
    heard = Heard()
    wanted: dict[int, TickMode] = {T0: "full", T1: "ltp"}
    made = connection(kite.connect_url(), heard, wanted)

    async def scenario() -> tuple[float, object]:
        async with running(made):
            await await_until(lambda: heard.tokens() == {T0, T1}, 5, what="first ticks")
            dropped = time.monotonic()
            assert await asyncio.to_thread(kite.drop_connections) == 1
            await await_until(lambda: heard.tokens(since=dropped + 0.05) == {T0, T1}, 5)
            return time.monotonic() - dropped, await asyncio.to_thread(kite.subscriptions)

    back_after, subscribed = run(scenario())
    assert len(kite.clients()) == 2
    assert subscribed == [wanted]
    assert made.status.reconnects == 1
    assert back_after < 2.0


def test_a_stalled_connection_is_declared_stale_and_replaced(kite: KiteServer) -> None:
    heard = Heard()
    made = connection(kite.connect_url(), heard, {T0: "quote"})

    async def scenario() -> float:
        async with running(made):
            await await_until(lambda: T0 in heard.tokens(), 5, what="first ticks")
            stalled = time.monotonic()
            assert await asyncio.to_thread(kite.stall) == 1
            await await_until(lambda: T0 in heard.tokens(since=stalled + STALE), 10)
            return time.monotonic() - stalled

    replaced_after = run(scenario())
    assert STALE <= replaced_after < STALE + 2.0
    assert len(kite.clients()) == 2 and made.status.reconnects == 1
    assert "no tick nor heartbeat" in (made.status.last_error or "")


def test_an_idle_connection_lives_on_heartbeats(kite: KiteServer) -> None:
    made = connection(kite.connect_url(), Heard(), {})

    async def scenario() -> None:
        async with running(made):
            await asyncio.sleep(6 * STALE)

    run(scenario())
    assert made.status.reconnects == 0 and made.status.frames == 0
    assert made.status.last_heartbeat_at is not None


def test_a_refused_handshake_ends_the_connection_without_retrying(kite: KiteServer) -> None:
    kite.refuse()
    made = connection(kite.connect_url(), Heard(), {T0: "full"})

    async def scenario() -> None:
        with pytest.raises(SessionRefusedError, match="HTTP 403"):
            await asyncio.wait_for(made.run(), 5)
        await asyncio.sleep(0.5)  # a retry would land here

    run(scenario())
    assert kite.refused_handshakes == 1


def test_malformed_and_text_frames_are_counted_and_the_stream_lives_on(kite: KiteServer) -> None:
    heard = Heard()
    metrics = MetricsBuffer()
    made = connection(kite.connect_url(), heard, {T0: "full"}, metrics)

    async def scenario() -> float:
        async with running(made):
            await await_until(lambda: T0 in heard.tokens(), 5, what="first ticks")
            for _ in range(3):
                await asyncio.to_thread(kite.send_malformed)
            await asyncio.to_thread(kite.send_text, "error", "token expired soon")
            await asyncio.to_thread(kite.send_text, "order", {"order_id": "1"})
            sent = time.monotonic()
            await await_until(lambda: made.status.malformed >= 3, 5, what="malformed counted")
            await await_until(lambda: T0 in heard.tokens(since=sent), 5, what="ticks after")
            return sent

    run(scenario())
    assert made.status.malformed == 3 and made.status.reconnects == 0
    pending = metrics.pending()
    assert sum(v for (name, _), v in pending.items() if name == "kite_malformed_total") == 3
    assert sum(v for (name, _), v in pending.items() if name == "kite_text_messages_total") == 2


def test_reconnects_back_off_while_the_server_is_gone_and_resume_when_it_returns() -> None:
    port = free_port()
    heard = Heard()
    made = connection(
        f"ws://127.0.0.1:{port}/?api_key=key&access_token={SECRET}", heard, {T0: "ltp"}
    )

    async def scenario() -> int:
        async with running(made):
            await asyncio.sleep(2.0)
            attempts = made.status.reconnects
            with KiteServer({"key": SECRET}, port=port, interval=0.02) as server:
                server.set_price(T0, 12.5)
                await await_until(lambda: T0 in heard.tokens(), 5, what="ticks once back")
            return attempts

    attempts = run(scenario())
    # Full-jitter backoff from 0.05 s, capped at 0.4 s: about a dozen attempts in 2 s
    # (a retry loop without backoff makes thousands).
    assert 3 <= attempts <= 60
    assert heard.last(T0).last_price == 12.5


def test_the_access_token_never_reaches_the_logs(
    kite: KiteServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    heard = Heard()
    made = connection(kite.connect_url(), heard, {T0: "ltp"})

    async def scenario() -> None:
        async with running(made):
            await await_until(lambda: T0 in heard.tokens(), 5, what="ticks")
            await asyncio.to_thread(kite.drop_connections)
            await await_until(lambda: len(kite.clients()) == 2, 5, what="reconnected")
        kite.refuse()
        with pytest.raises(SessionRefusedError):
            await asyncio.wait_for(connection(kite.connect_url(), heard, {}).run(), 5)

    run(scenario())
    assert "access_token=***" in caplog.text  # the handshake was logged, redacted
    assert SECRET not in caplog.text
