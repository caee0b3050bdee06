"""The fleet's bars in SQL: merged from the streams' segments, read back, pruned.

One row per token and bar start (epoch seconds), the primary key. Segments of one bar
(flushed again as it grew, or from two stream workers across a failover) merge into its
row in any order, any number of times, to the same bar (``merge``): so a move that
failed half-way is simply done again. The streams' segments wait in a Redis list;
``move_bars`` renames it aside first, so segments pushed meanwhile wait for the next move
and those taken are deleted only once their transaction committed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import redis
from sqlalchemy import BigInteger, Boolean, Float, Index, delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from tickfleet.history.bars import (
    CLOSE,
    FIRST_TS,
    HIGH,
    LAST_TS,
    LOW,
    MOCK,
    OI,
    OPEN,
    START,
    TOKEN,
    VOLUME_FIRST,
    VOLUME_LAST,
    Segment,
    collapse,
    merge,
)
from tickfleet.keyspace.keys import Keys
from tickfleet.storage.sql import Base, SessionFactory, transaction

log = logging.getLogger("tickfleet.history")

CHUNK: Final = 500  # rows per statement: well under SQLite's bound-parameter limit

# KEYS[1] pending list, KEYS[2] taken list. A move left unfinished is taken again first.
_TAKE: Final = """
local pending = KEYS[1]
local taken = KEYS[2]
if redis.call('EXISTS', taken) == 0 and redis.call('EXISTS', pending) == 1 then
  redis.call('RENAME', pending, taken)
end
return redis.call('LRANGE', taken, 0, -1)
"""


class BarRow(Base):
    __tablename__ = "bars"
    __table_args__ = (Index("ix_bars_start", "start"),)  # the retention prune

    token: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_ts: Mapped[float] = mapped_column(Float)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    last_ts: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume_first: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    volume_last: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    oi: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    is_mock: Mapped[bool] = mapped_column(Boolean)


_COLUMNS: Final = (
    "token", "start", "first_ts", "open", "high", "low", "last_ts", "close",
    "volume_first", "volume_last", "oi", "is_mock",
)  # fmt: skip
_FIELDS: Final = (
    TOKEN, START, FIRST_TS, OPEN, HIGH, LOW, LAST_TS, CLOSE, VOLUME_FIRST, VOLUME_LAST, OI, MOCK,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Bar:
    """One stored bar as read: ``start`` in epoch seconds, ``volume`` traded in the bar."""

    start: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    oi: int | None
    is_mock: bool


class BarStore:
    """The ``bars`` table."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def merge(self, segments: Iterable[Segment]) -> int:
        """Merge segments into their rows (one transaction); returns the bars written."""
        bars = collapse(segments)
        keys = list(bars)
        with transaction(self._sessions) as session:
            for i in range(0, len(keys), CHUNK):
                chunk = keys[i : i + CHUNK]
                for row in self._rows(session, chunk):
                    key = (row.token, row.start)
                    bars[key] = merge(_segment(row), bars[key])
                self._upsert(session, [bars[key] for key in chunk])
        return len(keys)

    @staticmethod
    def _rows(session: Session, keys: Sequence[tuple[int, int]]) -> Sequence[BarRow]:
        where = tuple_(BarRow.token, BarRow.start).in_(keys)
        return session.scalars(select(BarRow).where(where)).all()

    @staticmethod
    def _upsert(session: Session, segments: Sequence[Segment]) -> None:
        if not segments:
            return
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        values = [_values(segment) for segment in segments]
        stmt = insert(BarRow).values(values)
        updated = {name: stmt.excluded[name] for name in _COLUMNS[2:]}
        session.execute(stmt.on_conflict_do_update(index_elements=["token", "start"], set_=updated))

    def read(self, token: int, start: int, end: int) -> list[Bar]:
        """The bars of ``token`` starting in ``[start, end]`` (epoch seconds), oldest first;
        the bar before ``start`` is read too, for the first bar's volume."""
        with self._sessions() as session:
            rows = session.scalars(
                select(BarRow)
                .where(BarRow.token == token, BarRow.start >= start, BarRow.start <= end)
                .order_by(BarRow.start)
            ).all()
            before = session.scalars(
                select(BarRow)
                .where(BarRow.token == token, BarRow.start < start)
                .order_by(BarRow.start.desc())
                .limit(1)
            ).first()
        return _bars(before, rows)

    def first_start(self, token: int) -> int | None:
        """When the fleet's earliest kept bar of ``token`` starts (epoch seconds)."""
        with self._sessions() as session:
            return session.scalar(
                select(BarRow.start).where(BarRow.token == token).order_by(BarRow.start).limit(1)
            )

    def prune(self, before: int) -> int:
        """Delete bars starting before ``before`` (epoch seconds); returns how many."""
        with transaction(self._sessions) as session:
            result = session.execute(delete(BarRow).where(BarRow.start < before))
        return int(getattr(result, "rowcount", 0) or 0)


def _values(segment: Segment) -> dict[str, Any]:
    values: dict[str, Any] = dict(zip(_COLUMNS, (segment[i] for i in _FIELDS), strict=True))
    values["token"], values["start"] = int(values["token"]), int(values["start"])
    values["is_mock"] = bool(values["is_mock"])
    return values


def _segment(row: BarRow) -> Segment:
    segment: Segment = [None] * len(_FIELDS)
    for name, i in zip(_COLUMNS, _FIELDS, strict=True):
        segment[i] = getattr(row, name)
    return segment


def _bars(before: BarRow | None, rows: Sequence[BarRow]) -> list[Bar]:
    """Bars with their own volume: the latest cumulative volume less the previous bar's
    (Kite's tick volume counts the whole day); a session's first bar, or a count that
    went back (a new day), less its own first."""
    bars: list[Bar] = []
    previous = before
    for row in rows:
        bars.append(
            Bar(row.start, row.open, row.high, row.low, row.close,
                _volume(previous, row), row.oi, row.is_mock)
        )  # fmt: skip
        previous = row
    return bars


_DAY_SECONDS: Final = 86_400
_SESSION_GAP: Final = 12 * 3600
"""A previous bar this much older belongs to another session (NSE: 09:15 to 15:30)."""


def _volume(previous: BarRow | None, row: BarRow) -> int:
    last, first = row.volume_last, row.volume_first
    if last is None or first is None:
        return 0
    before = previous.volume_last if previous is not None else None
    same_session = previous is not None and row.start - previous.start < _SESSION_GAP
    if before is not None and same_session and first >= before:
        return last - before
    return last - first


def move_bars(client: redis.Redis, keys: Keys, store: BarStore) -> int:
    """Move the streams' waiting segments into SQL; returns the bars written."""
    taken = client.register_script(_TAKE)(keys=[keys.history_bars, keys.history_bars_taken])
    if not taken:
        return 0
    segments: list[Segment] = []
    for element in taken:
        try:
            segments.extend(orjson.loads(element))
        except orjson.JSONDecodeError as exc:
            log.warning("bars: an unreadable flush dropped: %s", exc)
    written = store.merge(segments)
    client.delete(keys.history_bars_taken)
    return written


def keep_bars(client: redis.Redis, keys: Keys, store: BarStore, now: float, days: int) -> int:
    """What the beat task does: move the waiting bars, prune those older than ``days``."""
    moved = move_bars(client, keys, store)
    pruned = store.prune(int(now) - days * _DAY_SECONDS)
    if pruned:
        log.info("bars: %d older than %d days pruned", pruned, days)
    return moved
