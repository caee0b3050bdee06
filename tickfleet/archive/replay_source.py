"""A recorded day read back for a replay: a short window of recorded time at a time.

A day of a busy stream is tens of millions of rows, far more than a stream may hold in
memory, so the replay never reads a day whole: ``RecordedDay`` learns each part's time
span once (from the Parquet statistics, without reading rows), then reads only the parts
that overlap the window asked for, only the rows of the kind and tokens asked for. Parts
of several recording processes overlap in time; a window's rows are sorted back into
publish order, ``(ts_ns, stream, seq)``, across them.

Rows the recorder marked ``replay`` (a replay's own ticks, heard by the recorder) are never
replayed again: a replay gives back what the market gave that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickfleet.archive.layout import ORDER, SCHEMA, day_dir
from tickfleet.archive.parts import parts_of

REPLAY_SOURCE = "replay"
"""The ``source`` of a republished tick: never replayed again."""

Key = tuple[int, str, int]
"""A row's place in publish order: ``(ts_ns, stream, seq)``."""


class Part(NamedTuple):
    path: Path
    underlying: str
    first_ns: int
    last_ns: int


class Rows(NamedTuple):
    """A window's rows in publish order, as columns of Python values."""

    ts_ns: list[int]
    stream: list[str]
    seq: list[int]
    token: list[int]
    underlying: list[str]
    payload: list[bytes]

    def key(self, i: int) -> Key:
        return (self.ts_ns[i], self.stream[i], self.seq[i])


def recorded_days(root: Path) -> list[dt.date]:
    """The market dates that have a directory in the archive, newest first."""
    days = []
    for path in root.glob("date=*"):
        try:
            days.append(dt.date.fromisoformat(path.name.removeprefix("date=")))
        except ValueError:
            continue
    return sorted(days, reverse=True)


def latest_session(root: Path, underlyings: Sequence[str]) -> dt.date | None:
    """The newest date with a tick of ``underlyings`` that was not itself a replay."""
    for day in recorded_days(root):
        if RecordedDay.open(root, day, underlyings).has_market_ticks():
            return day
    return None


@dataclass(frozen=True, slots=True)
class RecordedDay:
    """One market date's parts of some underlyings, with their time spans."""

    root: Path
    date: dt.date
    parts: tuple[Part, ...]

    @classmethod
    def open(cls, root: Path, date: dt.date, underlyings: Sequence[str]) -> RecordedDay:
        parts = [
            _part(path, name.upper()) for name in underlyings for path in parts_of(root, date, name)
        ]
        return cls(root, date, tuple(p for p in parts if p is not None))

    @property
    def where(self) -> Path:
        return day_dir(self.root, self.date)

    @property
    def first_ns(self) -> int | None:
        return min((p.first_ns for p in self.parts), default=None)

    @property
    def last_ns(self) -> int | None:
        return max((p.last_ns for p in self.parts), default=None)

    def has_market_ticks(self) -> bool:
        for part in self.parts:
            sources = pq.read_table(part.path, columns=["source"], schema=SCHEMA)["source"]
            if pc.any(pc.not_equal(sources, REPLAY_SOURCE)).as_py():
                return True
        return False

    def tokens(self, kind: str) -> set[int]:
        """Every token of ``kind`` recorded this day (to name the assigned ones that were not)."""
        found: set[int] = set()
        for part in self.parts:
            table = pq.read_table(part.path, columns=["kind", "token"], schema=SCHEMA)
            mask = pc.equal(table["kind"], kind)
            found.update(pc.unique(table["token"].filter(mask)).to_pylist())
        return found

    def next_start(self, after_ns: int) -> int | None:
        """The first instant at or after ``after_ns`` that a part covers (skips gaps)."""
        starts = [max(p.first_ns, after_ns) for p in self.parts if p.last_ns >= after_ns]
        return min(starts, default=None)

    def rows(self, start_ns: int, end_ns: int, kind: str, tokens: Collection[int]) -> Rows:
        """The market's rows ``start_ns <= ts_ns < end_ns`` of ``kind`` and ``tokens``."""
        tables = [
            _read(p, start_ns, end_ns, kind, tokens)
            for p in self.parts
            if p.first_ns < end_ns and p.last_ns >= start_ns
        ]
        if not tables:
            return Rows([], [], [], [], [], [])
        table = pa.concat_tables(tables).sort_by(ORDER)
        return Rows._make(table[name].to_pylist() for name in Rows._fields)


def _part(path: Path, underlying: str) -> Part | None:
    """A part and its time span from its row groups' statistics (its rows if it has none)."""
    meta = pq.ParquetFile(path).metadata
    if meta.num_rows == 0:
        return None
    column = meta.schema.names.index("ts_ns")
    stats = [meta.row_group(g).column(column).statistics for g in range(meta.num_row_groups)]
    if all(s is not None and s.has_min_max for s in stats):
        return Part(path, underlying, min(s.min for s in stats), max(s.max for s in stats))
    ts = pq.read_table(path, columns=["ts_ns"])["ts_ns"]
    bounds = pc.min_max(ts)
    return Part(path, underlying, bounds["min"].as_py(), bounds["max"].as_py())


def _read(part: Part, start_ns: int, end_ns: int, kind: str, tokens: Collection[int]) -> pa.Table:
    table = pq.read_table(
        part.path,
        schema=SCHEMA,
        filters=[("ts_ns", ">=", start_ns), ("ts_ns", "<", end_ns), ("kind", "=", kind)],
    )
    mask = pc.and_(
        pc.is_in(table["token"], value_set=pa.array(sorted(tokens), pa.int64())),
        pc.not_equal(table["source"], REPLAY_SOURCE),
    )
    table = table.filter(mask)
    return table.append_column("underlying", pa.array([part.underlying] * len(table), pa.string()))
