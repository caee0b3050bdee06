"""The archive's upkeep, run by beat: past days compacted, days past the retention removed.

Streams write a small part per flush period and per underlying (hundreds a day each):
reading a day would open them all, and each part's row groups hold a minute of ticks in
publish order. Compaction merges a finished day's parts, per underlying, into parts of up
to ``COMPACT_ROWS`` rows in one row group each, rows sorted by (token, time): each payload
then sits next to the same token's previous one, where zstd (at a higher level than the
writers') finds long matches, and the repeated strings are dictionary-encoded. Readers
get publish order back by sorting (``parts.read_ticks`` does).

Only days before the market's today are compacted, so no writer adds to a day being
merged. The merged part is written whole and renamed (``parts.write_part``'s way) before
its inputs are deleted; it names them in its metadata, so a compaction killed between the
two deletes them next time instead of leaving their ticks twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tickfleet.archive.layout import DICTIONARY_COLUMNS, PART_SUFFIX, SCHEMA, STATISTICS_COLUMNS
from tickfleet.archive.parts import TMP_SUFFIX
from tickfleet.metrics.catalog import Metrics

log = logging.getLogger("tickfleet.archive")

COMPACT_ROWS = 2_000_000  # a merged part's rows: bounds the memory one merge takes
COMPACTED_PREFIX = "c-"
INPUTS_KEY = b"tickfleet.inputs"
STALE_TMP_SECONDS = 3600.0  # a temporary file this old belongs to a killed writer
DELTA_COLUMNS = {"ts_ns": "DELTA_BINARY_PACKED", "seq": "DELTA_BINARY_PACKED"}
STORAGE_ORDER = [("token", "ascending"), ("ts_ns", "ascending"), ("seq", "ascending")]


@dataclass(frozen=True, slots=True)
class UpkeepReport:
    compacted_parts: int
    written_parts: int
    removed_days: list[str]


def write_compacted(path: Path, table: pa.Table, level: int, inputs: list[str]) -> None:
    """``table`` sorted for size, as one row group, written whole then renamed."""
    table = table.cast(SCHEMA).sort_by(STORAGE_ORDER)
    table = table.replace_schema_metadata({INPUTS_KEY: "\n".join(inputs).encode()})
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with tmp.open("wb") as sink:
            pq.write_table(
                table, sink, compression="zstd", compression_level=level,
                row_group_size=max(table.num_rows, 1), use_dictionary=DICTIONARY_COLUMNS,
                write_statistics=STATISTICS_COLUMNS,
                column_encoding=DELTA_COLUMNS, data_page_size=1 << 20,
            )  # fmt: skip
            sink.flush()
            os.fsync(sink.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _merged_inputs(path: Path) -> list[str]:
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(INPUTS_KEY, b"")
    return [name for name in raw.decode().split("\n") if name]


def _finish_interrupted(partition: Path) -> None:
    """Delete the inputs a merged part names that are still there (a killed compaction)."""
    for merged in partition.glob(f"{COMPACTED_PREFIX}*{PART_SUFFIX}"):
        for name in _merged_inputs(merged):
            (partition / name).unlink(missing_ok=True)


def _groups(parts: list[Path]) -> Iterator[list[Path]]:
    """Parts to merge together, each group at most ``COMPACT_ROWS`` rows (by metadata)."""
    group: list[Path] = []
    rows = 0
    for part in parts:
        n = pq.read_metadata(part).num_rows
        if group and rows + n > COMPACT_ROWS:
            yield group
            group, rows = [], 0
        group.append(part)
        rows += n
    if group:
        yield group


def compact_partition(partition: Path, level: int) -> tuple[int, int]:
    """Merge a finished partition's small parts; returns (parts merged, parts written).

    Merged parts already full are left alone; one not full is merged again with the rest.
    """
    _finish_interrupted(partition)
    small = [p for p in sorted(partition.glob(f"*{PART_SUFFIX}")) if not _full(p)]
    if len(small) < 2 and not any(not p.name.startswith(COMPACTED_PREFIX) for p in small):
        return 0, 0
    merged = written = 0
    for group in _groups(small):
        table = pa.concat_tables(pq.read_table(p, schema=SCHEMA) for p in group)
        first = min(table["ts_ns"].to_pylist()) if table.num_rows else 0
        name = f"{COMPACTED_PREFIX}{first:019d}-{len(group):06d}-{time.time_ns()}{PART_SUFFIX}"
        write_compacted(partition / name, table, level, [p.name for p in group])
        for p in group:
            p.unlink(missing_ok=True)
        merged += len(group)
        written += 1
    return merged, written


def _full(part: Path) -> bool:
    return (
        part.name.startswith(COMPACTED_PREFIX)
        and pq.read_metadata(part).num_rows >= COMPACT_ROWS // 2
    )


def _days(root: Path) -> Iterator[tuple[dt.date, Path]]:
    for day in sorted(root.glob("date=*")):
        try:
            yield dt.date.fromisoformat(day.name.removeprefix("date=")), day
        except ValueError:
            continue


def _remove_stale_tmp(day: Path, now: float) -> None:
    for tmp in day.glob(f"*/*{TMP_SUFFIX}"):
        try:
            if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()
        except FileNotFoundError:
            continue


def keep_archive(
    root: Path,
    today: dt.date,
    retention_days: int,
    level: int,
    metrics: Metrics,
    now: float | None = None,
) -> UpkeepReport:
    """Remove days older than ``retention_days`` before ``today`` (the market's), then
    compact every earlier day that has small parts."""
    if not root.exists():
        return UpkeepReport(0, 0, [])
    oldest_kept = today - dt.timedelta(days=retention_days)
    wall = time.time() if now is None else now  # file times are the system's, not the fleet's
    removed: list[str] = []
    compacted = written = 0
    for date, day in _days(root):
        if date < oldest_kept:
            shutil.rmtree(day, ignore_errors=True)
            removed.append(date.isoformat())
            continue
        _remove_stale_tmp(day, wall)
        if date < today:
            m, w = _compact_day(day, level)
            compacted, written = compacted + m, written + w
    report = UpkeepReport(compacted, written, removed)
    _count(root, report, metrics)
    return report


def _compact_day(day: Path, level: int) -> tuple[int, int]:
    merged = written = 0
    for partition in sorted(p for p in day.glob("underlying=*") if p.is_dir()):
        m, w = compact_partition(partition, level)
        merged, written = merged + m, written + w
    return merged, written


def _count(root: Path, report: UpkeepReport, metrics: Metrics) -> None:
    if report.compacted_parts:
        metrics.inc("archive_compacted_parts_total", report.compacted_parts)
        log.info(
            "archive %s: %d parts compacted into %d",
            root, report.compacted_parts, report.written_parts,
        )  # fmt: skip
    if report.removed_days:
        metrics.inc("archive_days_removed_total", len(report.removed_days))
        log.info("archive %s: %d days past the retention removed", root, len(report.removed_days))
