"""Reading a day back out: its ticks as they were published (``tickfleet ticks export``)
and a summary of it (``tickfleet ticks stats``).

An export writes every selected tick's payload byte for byte, in publish order, so a
consumer fed the export hears what it would have heard live. Times on the command line
are the market's (``--from 09:15``), like the archive's dates.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tickfleet.archive.formats import Format
from tickfleet.archive.layout import COMPRESSION
from tickfleet.archive.parts import parts_of, read_ticks

CSV_COLUMNS = ("time", "stream", "seq", "kind", "channel", "token", "source", "payload")


def market_ns(date: dt.date, at: dt.time, tz: str) -> int:
    """Epoch nanoseconds of ``at`` on the market's ``date``."""
    return int(dt.datetime.combine(date, at, ZoneInfo(tz)).timestamp() * 1e9)


def _iso(ts_ns: int, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts_ns / 1e9, tz).isoformat(timespec="microseconds")


def export_ticks(
    root: Path,
    date: dt.date,
    out: BinaryIO,
    fmt: Format,
    underlying: str | None = None,
    tokens: Collection[int] | None = None,
    start: dt.time | None = None,
    end: dt.time | None = None,
    tz: str = "Asia/Kolkata",
) -> int:
    """Write the selected ticks of ``date`` to ``out`` in publish order; returns how many.

    ``start`` is inclusive and ``end`` exclusive, both market times of ``date``.
    """
    table = read_ticks(
        root, date, underlying, tokens,
        market_ns(date, start, tz) if start else None,
        market_ns(date, end, tz) if end else None,
    )  # fmt: skip
    if fmt == "jsonl":
        for payload in table["payload"].to_pylist():
            out.write(payload)
            out.write(b"\n")
    elif fmt == "csv":
        _write_csv(table, out, ZoneInfo(tz))
    else:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression=COMPRESSION)
        out.write(sink.getvalue().to_pybytes())
    return int(table.num_rows)


def _write_csv(table: pa.Table, out: BinaryIO, tz: ZoneInfo) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(CSV_COLUMNS)
    columns = [table[name].to_pylist() for name in CSV_COLUMNS[1:-1]]
    for ts_ns, *row, payload in zip(
        table["ts_ns"].to_pylist(), *columns, table["payload"].to_pylist(), strict=True
    ):
        writer.writerow([_iso(ts_ns, tz), *row, payload.decode()])
    text.detach()  # ``out`` stays open: it is the caller's


@dataclass(slots=True)
class UnderlyingDay:
    """One underlying's day in the archive."""

    ticks: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    first: str | None = None
    last: str | None = None
    gaps: list[dict[str, object]] = field(default_factory=list)


def day_stats(
    root: Path, date: dt.date, gap_seconds: float = 60.0, tz: str = "Asia/Kolkata"
) -> dict[str, UnderlyingDay]:
    """Each underlying's ticks on ``date``: how many, of which kind and source, the first
    and last, and every stretch longer than ``gap_seconds`` without one."""
    zone = ZoneInfo(tz)
    found: dict[str, list[pa.Table]] = {}
    for part in parts_of(root, date):
        underlying = part.parent.name.removeprefix("underlying=")
        table = pq.read_table(part, columns=["ts_ns", "kind", "source"])
        found.setdefault(underlying, []).append(table)
    days = {}
    for underlying, tables in sorted(found.items()):
        table = pa.concat_tables(tables)
        day = UnderlyingDay(ticks=table.num_rows)
        day.by_kind = _counts(table["kind"])
        day.sources = _counts(table["source"])
        times = np.sort(table["ts_ns"].to_numpy())
        if len(times):
            day.first, day.last = _iso(int(times[0]), zone), _iso(int(times[-1]), zone)
        day.gaps = _gaps(times, gap_seconds, zone)
        days[underlying] = day
    return days


def _counts(column: pa.ChunkedArray) -> dict[str, int]:
    counted = column.value_counts().to_pylist()
    return {str(c["values"]): int(c["counts"]) for c in sorted(counted, key=lambda c: c["values"])}


def _gaps(times: np.ndarray, gap_seconds: float, zone: ZoneInfo) -> list[dict[str, object]]:
    if len(times) < 2:
        return []
    steps = np.diff(times)
    at = np.flatnonzero(steps > gap_seconds * 1e9)
    return [
        {
            "from": _iso(int(times[i]), zone),
            "to": _iso(int(times[i + 1]), zone),
            "seconds": round(float(steps[i]) / 1e9, 3),
        }
        for i in at
    ]
