"""Readers of the in-process snapshot never see a torn state or a version going back.

Every snapshot written here satisfies ``ts == T0 + version - 1`` besides the OHLC
relations, so a reader that saw fields of two different ticks would notice.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tickfleet.market.snapshot import (
    MockUnderlyingSnapshot,
    SnapshotCell,
    StaleSnapshotError,
    UnderlyingBuilder,
    WalkSpec,
)

pytestmark = pytest.mark.timeout(60)

START = datetime(2025, 1, 6, 18, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
T0 = START.timestamp()


@dataclass
class ReaderLog:
    reads: int = 0
    versions: set[int] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    last: MockUnderlyingSnapshot | None = None

    def see(self, snap: MockUnderlyingSnapshot | None) -> None:
        if snap is None:
            return
        self.reads += 1
        self.versions.add(snap.version)
        self.problems.extend(inconsistencies(snap, self.last))
        self.last = snap


def inconsistencies(
    snap: MockUnderlyingSnapshot, previous: MockUnderlyingSnapshot | None
) -> list[str]:
    found = []
    if not snap.low <= min(snap.price, snap.open) <= max(snap.price, snap.open) <= snap.high:
        found.append(f"v{snap.version}: OHLC out of order")
    if snap.ts != T0 + snap.version - 1:
        found.append(f"v{snap.version}: ts belongs to another tick")
    if previous is not None and snap.version < previous.version:
        found.append(f"v{snap.version} after v{previous.version}")
    if previous is not None and snap.version > previous.version and snap.volume < previous.volume:
        found.append(f"v{snap.version}: volume went down")
    return found


def at(version: int) -> datetime:
    return START + timedelta(seconds=version - 1)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    """Switch threads every microsecond so readers land between the writer's steps."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def run_threads(targets: list[Callable[[], None]]) -> None:
    threads = [threading.Thread(target=t, daemon=True) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
        assert not thread.is_alive()


def read_until(cell: SnapshotCell, done: threading.Event, log: ReaderLog) -> Callable[[], None]:
    def read() -> None:
        while not done.is_set():
            log.see(cell.current())
        log.see(cell.current())

    return read


def test_the_checker_notices_a_torn_snapshot() -> None:
    good = UnderlyingBuilder(WalkSpec(), 24_000.0).next(at(1), np.random.default_rng(0))
    torn = MockUnderlyingSnapshot(2, "NIFTY 50", good.high + 5, good.open, good.high, good.low,
                                  good.close, good.volume, good.ts, True)  # fmt: skip
    assert inconsistencies(good, None) == []
    assert len(inconsistencies(torn, good)) == 2  # price above high, ts of tick 1


def test_threads_see_whole_snapshots_in_version_order(fast_switching: None) -> None:
    cell, done = SnapshotCell(), threading.Event()
    builder, rng = UnderlyingBuilder(WalkSpec(), 24_000.0), np.random.default_rng(5)
    logs = [ReaderLog() for _ in range(8)]

    def write() -> None:
        for version in range(1, 20_001):
            cell.publish(builder.next(at(version), rng))
            if version % 20 == 0:
                time.sleep(0)  # let readers in between publishes, not only after them
        done.set()

    run_threads([write, *(read_until(cell, done, log) for log in logs)])
    assert [p for log in logs for p in log.problems] == []
    assert all(log.last is not None and log.last.version == 20_000 for log in logs)
    assert all(len(log.versions) > 1 for log in logs)
    assert len(set().union(*(log.versions for log in logs))) > 50


def test_racing_writers_never_move_the_cell_backwards(fast_switching: None) -> None:
    cell, done = SnapshotCell(), threading.Event()
    writers, per_writer = 4, 5_000
    refused = [0] * writers
    logs = [ReaderLog() for _ in range(4)]

    def writer(index: int) -> Callable[[], None]:
        def write() -> None:
            for k in range(per_writer):
                version = index + 1 + writers * k
                snap = MockUnderlyingSnapshot(version, "NIFTY 50", 100.0, 100.0, 101.0, 99.0,
                                              100.0, version, T0 + version - 1)  # fmt: skip
                try:
                    cell.publish(snap)
                except StaleSnapshotError:
                    refused[index] += 1

        return write

    def last_writer_done() -> None:
        run_threads([writer(i) for i in range(writers)])
        done.set()

    run_threads([last_writer_done, *(read_until(cell, done, log) for log in logs)])
    assert [p for log in logs for p in log.problems] == []
    current = cell.current()
    assert current is not None and current.version == writers * per_writer
    assert sum(refused) < writers * per_writer


async def read_async(cell: SnapshotCell, done: asyncio.Event, log: ReaderLog) -> None:
    while not done.is_set():
        log.see(cell.current())
        await asyncio.sleep(0)
    log.see(cell.current())


async def race_tasks(total: int) -> tuple[list[ReaderLog], list[ReaderLog]]:
    cell, done = SnapshotCell(), asyncio.Event()
    thread_done = threading.Event()
    builder, rng = UnderlyingBuilder(WalkSpec(), 24_000.0), np.random.default_rng(9)
    task_logs = [ReaderLog() for _ in range(8)]
    thread_logs = [ReaderLog() for _ in range(2)]

    async def write() -> None:
        for version in range(1, total + 1):
            cell.publish(builder.next(at(version), rng))
            await asyncio.sleep(0)
        done.set()
        thread_done.set()

    await asyncio.gather(
        write(),
        *(read_async(cell, done, log) for log in task_logs),
        *(asyncio.to_thread(read_until(cell, thread_done, log)) for log in thread_logs),
    )
    return task_logs, thread_logs


def test_asyncio_tasks_and_worker_threads_see_whole_snapshots_in_order() -> None:
    task_logs, thread_logs = asyncio.run(race_tasks(5_000))
    logs = task_logs + thread_logs
    assert [p for log in logs for p in log.problems] == []
    assert all(len(log.versions) > 100 for log in task_logs)
    assert all(log.reads > 0 for log in thread_logs)
    assert all(log.last is not None and log.last.version == 5_000 for log in logs)
