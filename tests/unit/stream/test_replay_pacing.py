"""The replay's pacing on an injected monotonic clock: due times from one anchor, no drift."""

from __future__ import annotations

import asyncio

import pytest

from tickfleet.runtime.clock import ManualClock
from tickfleet.stream.feeds.replay.pacing import NS, Pacer
from tickfleet.stream.feeds.replay.position import Position, run_of

pytestmark = pytest.mark.timeout(10)
T0 = 1_781_000_000 * NS  # any recorded instant


class LateSleep:
    """``asyncio.sleep`` on the manual clock, each wake-up ``late`` seconds after asked."""

    def __init__(self, clock: ManualClock, late: float = 0.0) -> None:
        self.clock = clock
        self.late = late
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.clock.advance(seconds + self.late)


def test_a_tick_is_due_its_recorded_offset_divided_by_the_speed_after_the_anchor() -> None:
    clock = ManualClock(500.0)
    pacer = Pacer(5, clock)
    pacer.anchor(T0)
    assert pacer.due(T0) == 500.0
    assert pacer.due(T0 + 10 * NS) == pytest.approx(502.0)
    assert pacer.due(T0 + 3_600 * NS) == pytest.approx(500.0 + 720.0)


def test_released_is_the_run_due_now_and_grows_with_the_clock() -> None:
    clock = ManualClock(0.0)
    pacer = Pacer(2, clock)
    ts = [T0, T0 + NS // 2, T0 + NS, T0 + 2 * NS, T0 + 4 * NS]
    pacer.anchor(T0)
    assert pacer.released(ts, 0, 5) == 1
    clock.advance(0.25)  # half a recorded second at 2x
    assert pacer.released(ts, 0, 5) == 2
    clock.advance(0.25)
    assert pacer.released(ts, 2, 5) == 3  # a due tick is released on the instant
    clock.advance(10)
    assert pacer.released(ts, 3, 4) == 4  # never past the bound asked


def test_late_wake_ups_do_not_add_up_over_a_long_replay() -> None:
    """Each sleep wakes 2 ms late; 10,000 ticks later the replay is still 2 ms late, not 20 s."""
    clock = ManualClock(0.0)
    sleep = LateSleep(clock, late=0.002)
    pacer = Pacer(1, clock, sleep)
    ts = [T0 + i * NS for i in range(10_000)]
    pacer.anchor(T0)

    async def play() -> list[float]:
        lateness = []
        for t in ts:
            await pacer.wait(t, at_most=60)
            lateness.append(clock.monotonic() - pacer.due(t))
        return lateness

    lateness = asyncio.run(play())
    assert max(lateness) == pytest.approx(0.002)
    assert clock.monotonic() == pytest.approx(9_999 + 0.002)


def test_a_wait_is_cut_at_most_seconds_to_let_the_feed_refresh_its_position() -> None:
    clock = ManualClock(0.0)
    sleep = LateSleep(clock)
    pacer = Pacer(1, clock, sleep)
    pacer.anchor(T0)
    asyncio.run(pacer.wait(T0 + 30 * NS, at_most=5))
    assert sleep.asked == [5]
    asyncio.run(pacer.wait(T0, at_most=5))  # already due: no sleep at all
    assert sleep.asked == [5]


def test_unpaced_releases_everything_at_once_and_never_sleeps() -> None:
    clock = ManualClock(0.0)
    sleep = LateSleep(clock)
    pacer = Pacer(0, clock, sleep)
    pacer.anchor(T0)
    assert pacer.released([T0, T0 + 3_600 * NS], 0, 2) == 2
    asyncio.run(pacer.wait(T0 + 3_600 * NS, at_most=5))
    assert sleep.asked == []


def test_a_negative_speed_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        Pacer(-1, ManualClock())


def test_a_position_reads_back_as_written_and_garbage_as_none() -> None:
    position = Position(run_of("2026-06-09", None, 42), (T0, "account:a-1", 7), 1234.5)
    assert Position.decode(position.encode()) == position
    assert Position.decode(b"not a position") is None


class TurnSleep(LateSleep):
    """``LateSleep``, a ``sleep(0)`` being one turn of a loop whose other tasks take
    ``turn`` seconds."""

    def __init__(self, clock: ManualClock, turn: float) -> None:
        super().__init__(clock)
        self.turn = turn

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.clock.advance(seconds or self.turn)


def test_with_spin_the_last_of_a_wait_yields_to_the_loop_until_the_tick_is_due() -> None:
    """A timer may wake late: a wait sleeps until ``spin`` before the due time, and the
    next yields a turn of the loop at a time (``sleep(0)``) until the clock reaches it."""
    clock = ManualClock(0.0)
    sleep = TurnSleep(clock, turn=2**-12)  # binary fractions: exact sums
    pacer = Pacer(1, clock, sleep, spin=2**-10)
    pacer.anchor(T0)
    due = T0 + NS // 8
    asyncio.run(pacer.wait(due, at_most=5))
    assert sleep.asked == [2**-3 - 2**-10]
    asyncio.run(pacer.wait(due, at_most=5))
    assert sleep.asked[1:] == [0, 0, 0, 0]  # 4 turns cover the spin
    assert clock.monotonic() >= pacer.due(due)
