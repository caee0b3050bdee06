"""A recorded day read back for a replay: a short window of recorded time at a time.

A day of a busy stream is tens of millions of rows, far more than a stream may hold in
memory, so the replay never reads a day whole: ``RecordedDay`` learns each part's time
span (and each row group's) once from the Parquet statistics, without reading rows, and
its ``Reader`` walks the day window after window, decoding each row group once, when the
first window overlapping it is asked for, and keeping its rows of the kind replayed (as
Arrow columns, sorted) only until the windows have passed it: a row group is the unit of
decoding (a part written whole is often one), so reading it again for every window would
decode it once per window. Parts of several recording processes overlap in time; a
window's rows are sorted back into publish order, ``(ts_ns, stream, seq)``, across them.

Rows the recorder marked ``replay`` (a replay's own ticks, heard by the recorder) are never
replayed again: a replay gives back what the market gave that day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
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
    groups: tuple[tuple[int, int], ...] = ()  # each row group's span; () unknown: one


class _Piece(NamedTuple):
    """What a reader decodes at once: a row group of a part (a whole part whose row
    groups' spans are unknown, ``group`` None)."""

    part: Part
    group: int | None
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
        return Reader(self, kind).rows(start_ns, end_ns, tokens)

    def reader(self, kind: str, ending: bytes | None = None) -> Reader:
        """Windows of this day's rows of ``kind``, read in time order (``Reader``)."""
        return Reader(self, kind, ending)


class _Decoded(NamedTuple):
    table: pa.Table  # a piece's market rows of the kind read, in publish order
    ts_ns: np.ndarray  # its ts_ns column, to find a window's rows by bisection


class Reader:
    """A day's rows of one kind, window after window (``rows``, in a thread).

    Each row group is decoded once, by the first window that overlaps it, and dropped
    once a window has ended after its last tick: windows asked in time order (as a replay
    asks them) hold at most the row groups that overlap the current one. A window asked
    again earlier is read again, never wrong. ``ending``: each payload's last byte (its
    closing brace) replaced by these bytes, in Arrow, before any Python object is made.
    """

    def __init__(self, day: RecordedDay, kind: str, ending: bytes | None = None) -> None:
        self._kind = kind
        self._ending = ending
        self._pieces = [
            _Piece(part, g, first, last)
            for part in day.parts
            for g, (first, last) in enumerate(part.groups)
        ] + [
            _Piece(part, None, part.first_ns, part.last_ns) for part in day.parts if not part.groups
        ]
        self._decoded: dict[tuple[Path, int | None], _Decoded] = {}

    def rows(self, start_ns: int, end_ns: int, tokens: Collection[int]) -> Rows:
        """The market's rows ``start_ns <= ts_ns < end_ns`` of ``tokens``, in publish order."""
        value_set = pa.array(sorted(tokens), pa.int64())
        tables = []
        for piece in self._pieces:
            if piece.first_ns >= end_ns or piece.last_ns < start_ns:
                continue
            key = (piece.part.path, piece.group)
            decoded = self._decoded.get(key)
            if decoded is None:
                decoded = self._decoded[key] = self._decode(piece)
            lo, hi = np.searchsorted(decoded.ts_ns, [start_ns, end_ns])
            window = decoded.table.slice(lo, hi - lo)
            tables.append(window.filter(pc.is_in(window["token"], value_set=value_set)))
        for piece in self._pieces:
            if piece.last_ns < end_ns:  # windows go on from end_ns: past this piece
                self._decoded.pop((piece.part.path, piece.group), None)
        if not tables:
            return Rows([], [], [], [], [], [])
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables).sort_by(ORDER)
        return Rows._make(table[name].to_pylist() for name in Rows._fields)

    def _decode(self, piece: _Piece) -> _Decoded:
        table = _read(piece.part, self._kind, piece.group)
        if self._ending is not None:
            payload = pc.binary_replace_slice(
                table["payload"], start=-1, stop=_END, replacement=self._ending
            )
            table = table.set_column(table.schema.get_field_index("payload"), "payload", payload)
        return _Decoded(table, table["ts_ns"].to_numpy())


_END = 2**31 - 1  # a slice's end past any payload


def _part(path: Path, underlying: str) -> Part | None:
    """A part and its time span from its row groups' statistics (its rows if it has none)."""
    meta = pq.ParquetFile(path).metadata
    if meta.num_rows == 0:
        return None
    column = meta.schema.names.index("ts_ns")
    stats = [meta.row_group(g).column(column).statistics for g in range(meta.num_row_groups)]
    if all(s is not None and s.has_min_max for s in stats):
        groups = tuple((s.min, s.max) for s in stats)
        return Part(path, underlying, min(s.min for s in stats), max(s.max for s in stats), groups)
    ts = pq.read_table(path, columns=["ts_ns"])["ts_ns"]
    bounds = pc.min_max(ts)
    return Part(path, underlying, bounds["min"].as_py(), bounds["max"].as_py())


def _read(part: Part, kind: str, group: int | None) -> pa.Table:
    """A part's (or one row group's) market rows of ``kind``, in publish order, with the
    part's underlying."""
    columns = [name for name in Rows._fields if name != "underlying"]
    if group is None:
        table = pq.read_table(part.path, columns=[*columns, "kind", "source"], schema=SCHEMA)
    else:
        table = pq.ParquetFile(part.path).read_row_group(group, [*columns, "kind", "source"])
    mask = pc.and_(pc.equal(table["kind"], kind), pc.not_equal(table["source"], REPLAY_SOURCE))
    table = table.filter(mask).select(columns).sort_by(ORDER)
    underlying = pa.repeat(pa.scalar(part.underlying, pa.string()), len(table))
    return table.append_column("underlying", underlying)
