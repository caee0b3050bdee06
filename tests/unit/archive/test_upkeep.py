"""Compaction keeps every tick and its publish order while merging a past day's parts;
today is left to its writers; days past the retention go; a killed merge leaves no
duplicate behind."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.instants import ist
from tickfleet.archive.layout import SCHEMA, day_dir, partition_dir
from tickfleet.archive.parts import parts_of, read_ticks, write_part
from tickfleet.archive.upkeep import COMPACTED_PREFIX, keep_archive, write_compacted
from tickfleet.metrics.buffer import MetricsBuffer

pytestmark = pytest.mark.timeout(30)

TODAY = date(2026, 6, 10)


def ticks(day: date, first_seq: int, n: int, tokens: int = 3) -> pa.Table:
    """``n`` ticks of ``tokens`` tokens, one every 10 ms from 10:00 of ``day``."""
    start = int(ist(day.year, day.month, day.day, 10, 0).timestamp() * 1e9)
    seqs = range(first_seq, first_seq + n)
    return pa.table(
        {
            "ts_ns": [start + s * 10_000_000 for s in seqs],
            "stream": ["account:a"] * n,
            "seq": list(seqs),
            "kind": ["options"] * n,
            "channel": ["ticker:nifty:options"] * n,
            "token": [100 + s % tokens for s in seqs],
            "source": ["mock"] * n,
            "payload": [b'{"token":%d,"seq":%d}' % (100 + s % tokens, s) for s in seqs],
        },
        schema=SCHEMA,
    )


def write_parts(root: Path, day: date, parts: int, per_part: int = 50) -> pa.Table:
    for k in range(parts):
        path = partition_dir(root, day, "NIFTY") / f"p-{k:04d}.parquet"
        write_part(path, ticks(day, k * per_part, per_part))
    return read_ticks(root, day)


def test_a_past_day_is_merged_into_one_part_that_reads_the_same(tmp_path: Path) -> None:
    yesterday = TODAY - timedelta(days=1)
    before = write_parts(tmp_path, yesterday, 5)
    today_before = write_parts(tmp_path, TODAY, 3)
    metrics = MetricsBuffer()
    report = keep_archive(tmp_path, TODAY, 30, 9, metrics)
    assert (report.compacted_parts, report.written_parts) == (5, 1)
    merged = list(parts_of(tmp_path, yesterday))
    assert [p.name.startswith(COMPACTED_PREFIX) for p in merged] == [True]
    assert pq.read_metadata(merged[0]).num_row_groups == 1
    # stored by token then time (for zstd), read back in publish order
    assert pq.read_table(merged[0])["token"].to_pylist() == sorted(before["token"].to_pylist())
    assert read_ticks(tmp_path, yesterday).equals(before)
    assert len(list(parts_of(tmp_path, TODAY))) == 3  # today's writers are still at it
    assert read_ticks(tmp_path, TODAY).equals(today_before)
    assert metrics.pending()[("archive_compacted_parts_total", "[]")] == 5
    # nothing more to do the second time
    assert keep_archive(tmp_path, TODAY, 30, 9, metrics).compacted_parts == 0


def test_days_past_the_retention_are_removed(tmp_path: Path) -> None:
    for age in (0, 2, 3, 4):
        write_parts(tmp_path, TODAY - timedelta(days=age), 1)
    report = keep_archive(tmp_path, TODAY, 3, 3, MetricsBuffer())
    assert report.removed_days == [(TODAY - timedelta(days=4)).isoformat()]
    assert not day_dir(tmp_path, TODAY - timedelta(days=4)).exists()
    assert day_dir(tmp_path, TODAY - timedelta(days=3)).exists()


def test_a_merge_killed_before_its_deletes_leaves_no_duplicate(tmp_path: Path) -> None:
    yesterday = TODAY - timedelta(days=1)
    before = write_parts(tmp_path, yesterday, 3)
    partition = partition_dir(tmp_path, yesterday, "NIFTY")
    inputs = sorted(p.name for p in partition.glob("*.parquet"))
    # the merged part renamed into place, its inputs not yet deleted
    write_compacted(partition / f"{COMPACTED_PREFIX}0-killed.parquet", before, 3, inputs)
    assert read_ticks(tmp_path, yesterday).num_rows == 2 * before.num_rows
    keep_archive(tmp_path, TODAY, 30, 3, MetricsBuffer())
    assert read_ticks(tmp_path, yesterday).equals(before)


def test_a_killed_writers_temporary_file_is_ignored_then_cleared(tmp_path: Path) -> None:
    write_parts(tmp_path, TODAY, 1)
    stale = partition_dir(tmp_path, TODAY, "NIFTY") / "p-9999.parquet.tmp"
    stale.write_bytes(b"PAR1 half a file")
    assert read_ticks(tmp_path, TODAY).num_rows == 50
    keep_archive(tmp_path, TODAY, 30, 3, MetricsBuffer(), now=stale.stat().st_mtime + 10)
    assert stale.exists()  # could still be a writer's
    keep_archive(tmp_path, TODAY, 30, 3, MetricsBuffer(), now=stale.stat().st_mtime + 7200)
    assert not stale.exists()
