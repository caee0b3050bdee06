"""The recorder files what Redis took: publish order, market dates, routes, and losses
counted by reason without ever holding up the caller."""

from __future__ import annotations

import errno
import time
from datetime import date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.support.instants import IST, ist
from tickfleet.archive.layout import partition_dir
from tickfleet.archive.parts import parts_of, read_ticks
from tickfleet.archive.recorder import (
    DISK_FULL,
    NOT_WRITABLE,
    QUEUE_FULL,
    WRITE_ERROR,
    RecorderConfig,
    Route,
    TickRecorder,
    drop_reason,
)
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import ManualClock
from tickfleet.stream.publisher import PendingTick
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(20)

NIFTY = Channels.for_underlying("ticker", "NIFTY")
BANK = Channels.for_underlying("ticker", "BANKNIFTY")
ROUTES = {
    NIFTY.options: Route("NIFTY", "options"),
    NIFTY.underlying: Route("NIFTY", "underlying", 256265),
    BANK.options: Route("BANKNIFTY", "options"),
}


def option(token: int, n: int, channels: Channels = NIFTY) -> PendingTick:
    payload = f'{{"token":{token},"n":{n}}}'.encode()
    return PendingTick(channels.options, channels.latest_options, str(token), payload, 0.0)


def index(n: int) -> PendingTick:
    payload = f'{{"symbol":"NIFTY","n":{n}}}'.encode()
    return PendingTick(NIFTY.underlying, NIFTY.latest_underlying, "NIFTY 50", payload, 0.0)


def recorder(
    root: Path, clock: ManualClock, metrics: MetricsBuffer | None = None, **config: float
) -> TickRecorder:
    return TickRecorder(
        "account:sim-1", ROUTES, RecorderConfig(root, **config),  # type: ignore[arg-type]
        clock, metrics or MetricsBuffer(), lambda: "mock",
    )  # fmt: skip


def counted(metrics: MetricsBuffer, name: str) -> dict[str, float]:
    return {labels: n for (metric, labels), n in metrics.pending().items() if metric == name}


def test_every_batch_is_filed_by_underlying_in_publish_order(tmp_path: Path) -> None:
    clock = ManualClock(ist(2026, 6, 10, 11, 0).timestamp())
    rec = recorder(tmp_path, clock)
    first = [option(101, 0), option(102, 0), index(0)]
    rec.record(first)
    clock.advance(0.25)
    # One batch, three channels: Redis publishes NIFTY's options, then BANKNIFTY's, then
    # the index, each where its channel first appears (batch_arguments).
    mixed = [option(101, 1), option(201, 1, BANK), index(1), option(102, 1), option(202, 1, BANK)]
    rec.record(mixed)
    rec.record([PendingTick("", NIFTY.latest_options, "101", b"", 0.0)])  # a retraction
    rec.record([])
    assert rec.flush() == 8

    nifty = read_ticks(tmp_path, date(2026, 6, 10), "NIFTY")
    assert nifty["payload"].to_pylist() == [
        b'{"token":101,"n":0}', b'{"token":102,"n":0}', b'{"symbol":"NIFTY","n":0}',
        b'{"token":101,"n":1}', b'{"token":102,"n":1}', b'{"symbol":"NIFTY","n":1}',
    ]  # fmt: skip
    assert nifty["token"].to_pylist() == [101, 102, 256265, 101, 102, 256265]
    assert nifty["kind"].to_pylist() == ["options"] * 2 + ["underlying"] + ["options"] * 2 + [
        "underlying"
    ]
    assert set(nifty["source"].to_pylist()) == {"mock"}
    assert set(nifty["stream"].to_pylist()) == {"account:sim-1"}
    start = int(ist(2026, 6, 10, 11, 0).timestamp() * 1e9)
    assert nifty["ts_ns"].to_pylist() == [start] * 3 + [start + 250_000_000] * 3
    bank = read_ticks(tmp_path, date(2026, 6, 10), "BANKNIFTY")
    assert bank["token"].to_pylist() == [201, 202]
    # seq is the stream's publish order across underlyings: NIFTY's options (3, 4), then
    # BANKNIFTY's (5, 6), then the index (7).
    assert nifty["seq"].to_pylist() == [0, 1, 2, 3, 4, 7]
    assert bank["seq"].to_pylist() == [5, 6]
    assert [p.parent for p in parts_of(tmp_path, date(2026, 6, 10))] == [
        partition_dir(tmp_path, date(2026, 6, 10), "BANKNIFTY"),
        partition_dir(tmp_path, date(2026, 6, 10), "NIFTY"),
    ]


def test_the_date_is_the_markets_not_utcs(tmp_path: Path) -> None:
    # 23:59:59.9 in Mumbai is 18:29:59.9 UTC the same day; 0.2 s later is the next
    # market day while UTC is still on the first.
    clock = ManualClock(datetime(2026, 6, 10, 23, 59, 59, 900_000, tzinfo=IST).timestamp())
    rec = recorder(tmp_path, clock)
    rec.record([option(101, 0)])
    clock.advance(0.2)
    rec.record([option(101, 1)])
    rec.flush()
    assert read_ticks(tmp_path, date(2026, 6, 10))["payload"].to_pylist() == [
        b'{"token":101,"n":0}'
    ]
    assert read_ticks(tmp_path, date(2026, 6, 11))["payload"].to_pylist() == [
        b'{"token":101,"n":1}'
    ]


def test_a_full_queue_drops_the_batch_counts_it_and_says_so(tmp_path: Path) -> None:
    metrics = MetricsBuffer()
    rec = recorder(tmp_path, ManualClock(), metrics, queue_max_ticks=3)
    rec.record([option(1, 0), option(2, 0)])
    rec.record([option(3, 0), option(4, 0)])  # 4 > 3: dropped whole
    rec.record([option(5, 0)])
    assert rec.pending == 3
    assert counted(metrics, "archive_dropped_total") == {f'["{QUEUE_FULL}"]': 2.0}
    assert rec.flush() == 3
    assert rec.report()["failing"] == QUEUE_FULL
    assert rec.report()["dropped"] == {QUEUE_FULL: 2}
    rec.record([option(6, 0)])
    rec.flush()
    assert rec.report()["state"] == "ok"  # no new loss: the state clears, the count stays
    assert rec.report()["dropped"] == {QUEUE_FULL: 2}


def test_a_failing_disk_counts_by_reason_and_recovers(tmp_path: Path) -> None:
    blocker = tmp_path / "archive"
    blocker.write_text("a file where the archive's folder should be")
    metrics = MetricsBuffer()
    rec = recorder(blocker, ManualClock(), metrics)
    rec.record([option(1, 0), option(2, 0)])
    assert rec.flush() == 0
    report = rec.report()
    assert report["state"] == "failing"
    assert report["failing"] == WRITE_ERROR
    assert "NotADirectoryError" in report["last_error"]
    assert counted(metrics, "archive_dropped_total") == {f'["{WRITE_ERROR}"]': 2.0}
    blocker.unlink()
    rec.record([option(3, 0)])
    assert rec.flush() == 1
    assert rec.report()["state"] == "ok"
    assert counted(metrics, "archive_ticks_written_total") == {'["account:sim-1"]': 1.0}


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, DISK_FULL),
        (errno.EDQUOT, DISK_FULL),
        (errno.EFBIG, DISK_FULL),
        (errno.EROFS, NOT_WRITABLE),
        (errno.EACCES, NOT_WRITABLE),
        (errno.EIO, WRITE_ERROR),
    ],
)
def test_reasons(code: int, reason: str) -> None:
    assert drop_reason(OSError(code, "x")) == reason


def test_the_thread_writes_each_period_and_all_on_close(tmp_path: Path) -> None:
    rec = recorder(tmp_path, ManualClock(ist(2026, 6, 10, 11, 0).timestamp()), flush_seconds=0.2)
    rec.start()
    try:
        rec.record([option(1, 0)])
        deadline = time.monotonic() + 3
        while not list(parts_of(tmp_path, date(2026, 6, 10))) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(list(parts_of(tmp_path, date(2026, 6, 10)))) == 1
        rec.record([option(2, 0)])
    finally:
        rec.close()
    parts = list(parts_of(tmp_path, date(2026, 6, 10)))
    assert sum(pq.read_metadata(p).num_rows for p in parts) == 2
    assert not list(tmp_path.rglob("*.tmp"))
    assert rec.report()["free_bytes"] > 0
