from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from tests.unit.monitor.helpers import Rig, counted, failure_records, rig
from tickfleet.supervision import RestartPolicy, Supervisor, SupervisorFailed

pytestmark = pytest.mark.timeout(10)

QUICK = RestartPolicy("restart", max_restarts=3, backoff_initial=0.001, backoff_max=0.01)
FAIL = RestartPolicy("fail")


class FeedError(Exception):
    pass


class FixedRng:
    def random(self) -> float:
        return 0.5


def supervisor(r: Rig, stop_timeout: float = 5.0) -> Supervisor:
    return Supervisor(r.monitor, "stream:acct-7", rng=FixedRng(), stop_timeout=stop_timeout)


class Sibling:
    """A coroutine that runs until cancelled and remembers that it was."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def flaky(failures: int, done: asyncio.Event | None = None) -> Callable[[], Awaitable[None]]:
    """Fails ``failures`` times, then returns (setting ``done``)."""
    runs = 0

    async def run() -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0)
        if runs <= failures:
            raise FeedError(f"run {runs}")
        if done is not None:
            done.set()

    return run


async def always_fails() -> None:
    await asyncio.sleep(0)
    raise FeedError("dead feed")


def test_restart_policy_restarts_twice_and_keeps_running(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()
    sup = supervisor(r)
    sibling = Sibling()
    recovered = asyncio.Event()

    async def main() -> None:
        sup.supervise("feed", flaky(2, recovered), QUICK)
        sup.supervise("heartbeat", sibling, FAIL)
        running = asyncio.create_task(sup.run())
        await asyncio.wait_for(recovered.wait(), 5)
        await asyncio.sleep(0.01)
        assert not running.done() and not sibling.cancelled
        sup.stop()
        await running

    asyncio.run(main())
    assert sup.restarts("feed") == 2
    assert counted(r.metrics, "feed") == 2
    assert [f.restarts for f in r.monitor.failures] == [1, 0]
    restart_lines = [rec.getMessage() for rec in caplog.records if rec.levelno == logging.WARNING]
    assert restart_lines == [
        "restarting feed in 0.00s (attempt 1/3)",
        "restarting feed in 0.00s (attempt 2/3)",
    ]
    assert sibling.cancelled


def test_fail_policy_cancels_siblings_and_raises(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()
    sup = supervisor(r)
    siblings = [Sibling(), Sibling()]

    async def main() -> None:
        sup.supervise("control", siblings[0], QUICK)
        sup.supervise("heartbeat", siblings[1], QUICK)

        async def feed() -> None:
            await asyncio.gather(*(s.started.wait() for s in siblings))
            raise FeedError("dead feed")

        sup.supervise("feed", feed, FAIL)
        await sup.run()

    with pytest.raises(SupervisorFailed) as info:
        asyncio.run(main())
    assert info.value.failure.task == "feed"
    assert info.value.failure.message == "dead feed"
    assert "policy fail" in str(info.value)
    assert [s.cancelled for s in siblings] == [True, True]
    assert counted(r.metrics, "feed") == 1
    assert counted(r.metrics, "control") == counted(r.metrics, "heartbeat") == 0
    assert len(failure_records(caplog.records, "feed")) == 1


def test_exceeding_the_restart_budget_fails_the_supervisor() -> None:
    r = rig()
    sup = supervisor(r)
    sibling = Sibling()

    async def main() -> None:
        sup.supervise("heartbeat", sibling, QUICK)
        sup.supervise("feed", always_fails, QUICK)
        await sup.run()

    with pytest.raises(SupervisorFailed, match="more than 3 times") as info:
        asyncio.run(main())
    assert info.value.failure.restarts == 3
    assert [f.restarts for f in r.monitor.failures] == [3, 2, 1, 0]
    assert counted(r.metrics, "feed") == 4
    assert sibling.cancelled


def test_normal_return_finishes_the_coroutine_and_run_returns_when_all_did() -> None:
    r = rig()
    sup = supervisor(r)
    runs: list[str] = []

    async def once() -> None:
        runs.append("once")

    async def main() -> None:
        sup.supervise("a", once, QUICK)
        sup.supervise("b", once, FAIL)
        await sup.run()

    asyncio.run(main())
    assert runs == ["once", "once"]
    assert r.metrics.pending() == {}


def test_stop_cancels_everything_and_run_returns_normally() -> None:
    r = rig()
    sup = supervisor(r)
    siblings = [Sibling(), Sibling()]

    async def main() -> None:
        for n, sibling in enumerate(siblings):
            sup.supervise(f"s{n}", sibling, QUICK)
        running = asyncio.create_task(sup.run())
        await asyncio.gather(*(s.started.wait() for s in siblings))
        sup.stop()
        await running
        assert running.result() is None

    asyncio.run(main())
    assert [s.cancelled for s in siblings] == [True, True]
    assert r.metrics.pending() == {}


def test_stop_during_backoff_ends_run() -> None:
    r = rig()
    sup = supervisor(r)
    slow = RestartPolicy(backoff_initial=30.0, backoff_max=30.0)

    async def main() -> None:
        sup.supervise("feed", always_fails, slow)
        running = asyncio.create_task(sup.run())
        while not r.monitor.failures:
            await asyncio.sleep(0.001)
        sup.stop()
        await asyncio.wait_for(running, 5)

    asyncio.run(main())
    assert sup.restarts("feed") == 0


def test_stop_before_run_starts_nothing() -> None:
    r = rig()
    sup = supervisor(r)
    calls: list[str] = []

    async def feed() -> None:
        calls.append("started")

    async def main() -> None:
        sup.supervise("feed", feed, QUICK)
        sup.stop()
        await sup.run()

    asyncio.run(main())
    assert calls == []


def test_cancelling_run_cancels_the_children() -> None:
    r = rig()
    sup = supervisor(r)
    sibling = Sibling()

    async def main() -> None:
        sup.supervise("feed", sibling, QUICK)
        running = asyncio.create_task(sup.run())
        await sibling.started.wait()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(main())
    assert sibling.cancelled
    assert r.metrics.pending() == {}


def test_coroutines_are_added_before_run() -> None:
    r = rig()
    sup = supervisor(r)
    first = Sibling()

    async def main() -> None:
        sup.supervise("first", first, QUICK)
        running = asyncio.create_task(sup.run())
        await first.started.wait()
        with pytest.raises(RuntimeError, match="add coroutines before"):
            sup.supervise("late", Sibling(), QUICK)
        sup.stop()
        await running

    asyncio.run(main())
    assert first.cancelled


def test_factory_that_raises_is_a_reported_failure() -> None:
    r = rig()
    sup = supervisor(r)

    def broken_factory() -> Awaitable[None]:
        raise FeedError("cannot build feed")

    async def main() -> None:
        sup.supervise("feed", broken_factory, FAIL)
        await sup.run()

    with pytest.raises(SupervisorFailed):
        asyncio.run(main())
    assert counted(r.metrics, "feed") == 1


def test_a_child_ignoring_cancellation_is_left_behind_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = rig()
    sup = supervisor(r, stop_timeout=0.05)
    release = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            await release.wait()

    async def main() -> None:
        sup.supervise("stubborn", stubborn, QUICK)
        running = asyncio.create_task(sup.run())
        await asyncio.sleep(0.01)
        sup.stop()
        await asyncio.wait_for(running, 5)
        release.set()

    asyncio.run(main())
    assert any("ignored cancellation" in rec.getMessage() for rec in caplog.records)


def test_names_are_unique_and_run_happens_once() -> None:
    r = rig()
    sup = supervisor(r)
    sup.supervise("feed", flaky(0), QUICK)
    with pytest.raises(ValueError, match="already supervises"):
        sup.supervise("feed", always_fails, QUICK)

    async def main() -> None:
        await sup.run()
        await sup.run()

    with pytest.raises(RuntimeError, match="only once"):
        asyncio.run(main())
