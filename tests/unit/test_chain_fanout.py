"""``TickFanout``'s bookkeeping per underlying, with the subscription injected: the first
watcher of an underlying opens its subscription and the last one's leaving closes it (none
left behind, no task either), one cap counts the watchers of every underlying, and each
watcher hears only its own underlying. Real Redis, standalone and cluster, is
``tests/integration/test_fanout.py``'s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field, replace

import orjson
import pytest

from tests.support.polling import await_until
from tickfleet.chain.fanout import FanoutConfig, Frame, Seat, TickFanout
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(20)

NIFTY = Channels.for_underlying("ticker", "NIFTY")
BANKNIFTY = Channels.for_underlying("ticker", "BANKNIFTY")
FAST = FanoutConfig(
    frame_seconds=0.02, status_seconds=0.05, idle_seconds=0.2, ping_seconds=0.5,
    silence_seconds=5.0, retry_seconds=0.05,
)  # fmt: skip


@dataclass(eq=False)
class FakeListener:
    """A subscription that hears what the test puts in it and records what was asked."""

    channels: tuple[str, ...] = ()
    closed: bool = False
    heard: asyncio.Queue[tuple[str, bytes]] = field(default_factory=asyncio.Queue)

    async def subscribe(self, *channels: str) -> None:
        self.channels = channels

    async def get(self, timeout: float) -> tuple[str, bytes] | None:
        try:
            return await asyncio.wait_for(self.heard.get(), timeout)
        except TimeoutError:
            return None

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self.closed = True

    def of(self, channels: Channels) -> bool:
        return self.channels == (channels.options, channels.underlying, channels.events)


def _connector(opened: list[FakeListener]) -> Callable[[], Awaitable[FakeListener]]:
    async def connect() -> FakeListener:
        opened.append(FakeListener())
        return opened[-1]

    return connect


def _fanout(opened: list[FakeListener], config: FanoutConfig = FAST) -> TickFanout:
    return TickFanout(_connector(opened), lambda: {"status": "ok"}, _raise, config)


def _raise(exc: Exception) -> None:
    raise AssertionError(f"reported: {exc!r}")


def _seat(fanout: TickFanout, channels: Channels) -> Seat:
    seat = fanout.admit(channels)
    assert seat is not None
    return seat


def _tick(token: int) -> bytes:
    return orjson.dumps({"instrument_token": token, "last_price": 1.0})


def _others() -> set[asyncio.Task[object]]:
    """The tasks on the loop besides the test's own: the fan-out's, while it runs any."""
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}


def test_an_underlyings_first_watcher_opens_its_subscription_and_its_last_closes_it() -> None:
    async def scenario() -> None:
        opened: list[FakeListener] = []
        fanout = _fanout(opened)
        nifty = [_seat(fanout, NIFTY), _seat(fanout, NIFTY)]
        await await_until(lambda: NIFTY in fanout.subscribed, 5, what="NIFTY subscribed")
        assert len(opened) == 1 and opened[0].of(NIFTY)  # two watchers, one subscription
        bank = _seat(fanout, BANKNIFTY)
        await await_until(lambda: BANKNIFTY in fanout.subscribed, 5, what="BANKNIFTY's")
        assert len(opened) == 2 and opened[1].of(BANKNIFTY)
        assert fanout.subscriptions == {NIFTY, BANKNIFTY} and fanout.watchers == 3

        for seat in nifty:
            seat.release()
        await await_until(lambda: opened[0].closed, 5, what="NIFTY's to close once idle")
        assert fanout.subscriptions == {BANKNIFTY} and not opened[1].closed
        assert fanout.watchers == 1

        bank.release()
        await await_until(lambda: opened[1].closed, 5, what="BANKNIFTY's to close once idle")
        assert fanout.subscriptions == frozenset() and fanout.watchers == 0
        await await_until(lambda: not _others(), 5, what="no fan-out task left")
        assert len(opened) == 2

        _seat(fanout, NIFTY)  # a watcher after all that: a new subscription
        await await_until(lambda: len(opened) == 3 and opened[2].of(NIFTY), 5, what="anew")
        await fanout.aclose()
        assert opened[2].closed and fanout.subscriptions == frozenset() and not _others()

    asyncio.run(scenario())


def test_a_watcher_back_within_the_idle_time_keeps_the_subscription() -> None:
    async def scenario() -> None:
        opened: list[FakeListener] = []
        fanout = _fanout(opened, replace(FAST, idle_seconds=5.0))
        first = _seat(fanout, NIFTY)
        await await_until(lambda: NIFTY in fanout.subscribed, 5, what="NIFTY subscribed")
        first.release()
        await asyncio.sleep(FAST.frame_seconds * 5)
        seat = _seat(fanout, NIFTY)
        await asyncio.sleep(FAST.frame_seconds * 5)
        assert len(opened) == 1 and not opened[0].closed
        seat.release()
        await fanout.aclose()
        assert opened[0].closed and not _others()

    asyncio.run(scenario())


def test_one_cap_counts_the_watchers_of_every_underlying() -> None:
    async def scenario() -> None:
        opened: list[FakeListener] = []
        fanout = _fanout(opened, replace(FAST, max_watchers=3))
        try:
            seats = [_seat(fanout, NIFTY), _seat(fanout, NIFTY), _seat(fanout, BANKNIFTY)]
            assert fanout.admit(BANKNIFTY) is None and fanout.admit(NIFTY) is None
            seats[0].release()
            seats[0].release()  # a second release frees nothing more
            assert fanout.watchers == 2
            assert fanout.admit(BANKNIFTY) is not None and fanout.admit(NIFTY) is None
        finally:
            await fanout.aclose()

    asyncio.run(scenario())


async def _collect(frames: AsyncGenerator[Frame, None], into: list[Frame]) -> None:
    async for frame in frames:
        into.append(frame)


def test_each_watcher_hears_only_its_own_underlying() -> None:
    async def scenario() -> None:
        opened: list[FakeListener] = []
        fanout = _fanout(opened)
        heard: dict[Channels, list[Frame]] = {NIFTY: [], BANKNIFTY: []}
        tasks = [
            asyncio.create_task(_collect(fanout.watch(_seat(fanout, c)), got))
            for c, got in heard.items()
        ]
        try:
            await await_until(lambda: len(fanout.subscribed) == 2, 5, what="both subscribed")
            nifty, bank = (next(o for o in opened if o.of(c)) for c in (NIFTY, BANKNIFTY))
            nifty.heard.put_nowait((NIFTY.options, _tick(1)))
            bank.heard.put_nowait((BANKNIFTY.options, _tick(2)))
            bank.heard.put_nowait((BANKNIFTY.underlying, orjson.dumps({"last_price": 57e3})))
            await await_until(
                lambda: _tokens(heard[NIFTY]) and _tokens(heard[BANKNIFTY]), 5, what="ticks"
            )
            await asyncio.sleep(FAST.frame_seconds * 3)
            assert _tokens(heard[NIFTY]) == {1} and _tokens(heard[BANKNIFTY]) == {2}
            assert [f.underlying for f in heard[NIFTY] if f.underlying] == []
            assert [f.underlying for f in heard[BANKNIFTY] if f.underlying] == [
                {"last_price": 57e3}
            ]
            assert any(f.status == {"status": "ok"} for f in heard[NIFTY])
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await fanout.aclose()
        assert fanout.watchers == 0 and all(o.closed for o in opened)

    asyncio.run(scenario())


def _tokens(frames: list[Frame]) -> set[int]:
    return {t["instrument_token"] for f in frames for t in f.options}
