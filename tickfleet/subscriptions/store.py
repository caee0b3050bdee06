"""The subscription store: which instrument tokens the fleet streams, in which mode.

Rows are deactivated, never deleted, so an operator can always see what was asked for,
when, and why it stopped. Writes are upserts that behave the same on SQLite and
PostgreSQL, so concurrent requests for one token never fail on a unique key.

A subscription request's reads and its write are one transaction (``writing``): a
``POST`` checks out one connection, not four. SQLite takes one writer at a time, so the
writers of one process queue on a lock (bounded by the database timeout) instead of in
SQLite's busy handler, whose sleeps of up to 100 ms made p99 two seconds under 50 clients.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Integer,
    String,
    Table,
    bindparam,
    case,
    func,
    null,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.dml import ReturningInsert

from tickfleet.storage.sql import DEFAULT_TIMEOUT_SECONDS, Base, SessionFactory, transaction


class Mode(enum.StrEnum):
    LTP = "LTP"
    QUOTE = "QUOTE"
    FULL = "FULL"


class Status(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


class SubscriptionRow(Base):
    __tablename__ = "subscriptions"

    token: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    mode: Mapped[str] = mapped_column(String(8))
    pinned_account: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(8), index=True)
    account: Mapped[str | None] = mapped_column(String(64), nullable=True)
    connection: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """``mode`` None: an active subscription keeps its mode, a new one streams FULL."""

    token: int
    mode: Mode | None = None
    pinned_account: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    token: int
    mode: Mode
    pinned_account: str | None
    status: Status
    account: str | None
    connection: int | None
    reason: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status is Status.ACTIVE


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone=True columns; we store UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    """What is stored: UTC, so SQLite (which drops the offset) reads back the same instant."""
    return value.astimezone(UTC)


class _Stored(Protocol):
    """A stored subscription: an ORM row or a Core result row of the table."""

    token: int
    mode: str
    pinned_account: str | None
    status: str
    account: str | None
    connection: int | None
    reason: str | None
    created_at: datetime
    updated_at: datetime


def _from_row(row: _Stored) -> Subscription:
    return Subscription(
        token=row.token,
        mode=Mode(row.mode),
        pinned_account=row.pinned_account,
        status=Status(row.status),
        account=row.account,
        connection=row.connection,
        reason=row.reason,
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


# A request's statements are built once, here, not per request: building and hashing a
# fresh statement cost more than SQLite's work on it (cProfile of a POST). Parameters are
# bound at execution; "tokens" lists expand to IN (...).
_TABLE = cast(Table, SubscriptionRow.__table__)
_C = _TABLE.c
_ACTIVE = _C.status == Status.ACTIVE.value
_CHUNK = 500

_PINS = select(_C.token, _C.pinned_account).where(
    _C.token.in_(bindparam("tokens", expanding=True)), _ACTIVE
)
_LOAD = select(_C.pinned_account, func.count()).where(_ACTIVE).group_by(_C.pinned_account)
_GET = select(*_C).where(_C.token == bindparam("wanted"))
_DEACTIVATE = (
    update(_TABLE)
    .where(_C.token.in_(bindparam("tokens", expanding=True)), _ACTIVE)
    .values(
        status=Status.INACTIVE.value,
        reason=bindparam("why"),
        updated_at=bindparam("at"),
        account=None,
        connection=None,
    )
    .returning(_C.token)
)


@cache
def _upsert_statement(dialect: str, *, keep_mode: bool) -> ReturningInsert[Any]:
    """Insert or re-activate, returning the rows; ``keep_mode``: an active row keeps its
    mode (a new or re-activated one takes the inserted mode).

    The update takes no bound parameter, only the inserted row's values (its status is
    always active): SQLAlchemy sends an upsert whose update has one row at a time, one
    execute per row, and a batch of rows in one statement otherwise.
    """
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_TABLE)
    mode: Any = stmt.excluded.mode
    if keep_mode:
        mode = case((_C.status == stmt.excluded.status, _C.mode), else_=mode)
    upsert = stmt.on_conflict_do_update(
        index_elements=[_C.token],
        set_={
            "mode": mode,
            "pinned_account": stmt.excluded.pinned_account,
            "status": stmt.excluded.status,
            "reason": null(),
            "updated_at": stmt.excluded.updated_at,
        },
    )
    return upsert.returning(*_C)


def _values(requests: Iterable[SubscriptionRequest], now: datetime) -> list[dict[str, object]]:
    return [
        {
            "token": r.token,
            "mode": (r.mode or Mode.FULL).value,
            "pinned_account": r.pinned_account,
            "status": Status.ACTIVE.value,
            "created_at": now,
            "updated_at": now,
        }
        for r in requests
    ]


def _active_pins(conn: Connection, tokens: Iterable[int]) -> dict[int, str | None]:
    wanted = sorted(set(tokens))
    found: dict[int, str | None] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(_PINS, {"tokens": wanted[start : start + _CHUNK]})
        found.update((token, pin) for token, pin in rows)
    return found


def _load(conn: Connection) -> dict[str | None, int]:
    return {pin: int(n) for pin, n in conn.execute(_LOAD)}


class SubscriptionWrite:
    """The store's reads and writes inside one transaction (``SubscriptionStore.writing``)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def active_pins(self, tokens: Iterable[int]) -> dict[int, str | None]:
        """The pinned account of each of ``tokens`` that is active now."""
        return _active_pins(self._conn, tokens)

    def load(self) -> dict[str | None, int]:
        """Active subscriptions per pinned account (``None``: not pinned)."""
        return _load(self._conn)

    def get(self, token: int) -> Subscription | None:
        row = self._conn.execute(_GET, {"wanted": token}).first()
        return _from_row(cast(_Stored, row)) if row else None

    def upsert(self, requests: Sequence[SubscriptionRequest], now: datetime) -> list[Subscription]:
        """Create or re-activate subscriptions; returns their new state, by token."""
        now = _utc(now)
        by_token = {r.token: r for r in requests}  # the last request for a token wins
        kept = [r for r in by_token.values() if r.mode is None]
        given = [r for r in by_token.values() if r.mode is not None]
        dialect = self._conn.dialect.name
        saved: list[Subscription] = []
        for batch, keep_mode in ((kept, True), (given, False)):
            if batch:
                stmt = _upsert_statement(dialect, keep_mode=keep_mode)
                rows = self._conn.execute(stmt, _values(batch, now))
                saved.extend(_from_row(cast(_Stored, row)) for row in rows)
        return sorted(saved, key=lambda s: s.token)

    def deactivate(self, tokens: Sequence[int], reason: str, now: datetime) -> list[int]:
        """Mark active subscriptions inactive; returns the tokens that changed."""
        changed: list[int] = []
        wanted = sorted(set(tokens))
        for start in range(0, len(wanted), _CHUNK):
            params = {"tokens": wanted[start : start + _CHUNK], "why": reason, "at": _utc(now)}
            changed.extend(self._conn.scalars(_DEACTIVATE, params))
        return sorted(changed)


class WriterBusyError(sa_exc.TimeoutError):
    """Another write of this process kept SQLite's one write slot for the whole database
    timeout: the database is unavailable, as when the pool has no connection to give."""


class SubscriptionStore:
    """SQL-backed subscriptions; every method is one transaction."""

    def __init__(self, sessions: SessionFactory, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self._sessions = sessions
        self._timeout = timeout
        self._engine: Engine = sessions.kw["bind"]
        sqlite_file = self._engine.dialect.name == "sqlite"
        self._one_writer = threading.Lock() if sqlite_file else None

    @contextmanager
    def writing(self) -> Iterator[SubscriptionWrite]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self._writer(), self._engine.begin() as conn:
            yield SubscriptionWrite(conn)

    def _writer(self) -> AbstractContextManager[object]:
        """SQLite's write slot for this process (a no-op on PostgreSQL: rows lock)."""
        if self._one_writer is None:
            return nullcontext()
        if not self._one_writer.acquire(timeout=self._timeout):
            raise WriterBusyError(f"no SQLite write slot within {self._timeout:g}s")
        return _released(self._one_writer)

    def upsert_many(
        self, requests: Sequence[SubscriptionRequest], now: datetime
    ) -> list[Subscription]:
        """Create or re-activate subscriptions, all or none; returns their new state."""
        if not requests:
            return []
        with self.writing() as write:
            return write.upsert(requests, now)

    def deactivate(self, tokens: Iterable[int], reason: str, now: datetime) -> list[int]:
        """Mark active subscriptions inactive; returns the tokens that changed."""
        wanted = list(tokens)
        if not wanted:
            return []
        with self.writing() as write:
            return write.deactivate(wanted, reason, now)

    def get(self, token: int) -> Subscription | None:
        with self._sessions() as session:
            row = session.get(SubscriptionRow, token)
            return _from_row(row) if row else None

    def find(
        self, status: Status | None = None, *, limit: int | None = None, offset: int = 0
    ) -> list[Subscription]:
        """Subscriptions by token, optionally one status, optionally a page of them."""
        query = select(SubscriptionRow).order_by(SubscriptionRow.token).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        if status is not None:
            query = query.where(SubscriptionRow.status == status.value)
        with self._sessions() as session:
            return [_from_row(r) for r in session.scalars(query)]

    def active(self) -> list[Subscription]:
        return self.find(Status.ACTIVE)

    def load(self) -> dict[str | None, int]:
        """Active subscriptions per pinned account (``None``: not pinned)."""
        with self._engine.connect() as conn:
            return _load(conn)

    def last_change(self) -> datetime | None:
        """When any subscription last changed (created, updated or deactivated)."""
        with self._sessions() as session:
            latest = session.scalar(select(func.max(SubscriptionRow.updated_at)))
        return _aware(latest) if latest is not None else None

    def counts(self) -> dict[str, int]:
        query = select(SubscriptionRow.status, func.count()).group_by(SubscriptionRow.status)
        with self._sessions() as session:
            found = {status: int(n) for status, n in session.execute(query)}
        return {s.value: found.get(s.value, 0) for s in Status}

    def record_placements(self, placements: dict[int, tuple[str, int] | None]) -> None:
        """Store where each active token streams from (None: not placed), for operators."""
        if not placements:
            return
        with self._writer(), transaction(self._sessions) as session:
            for account, connection, tokens in _group_placements(placements):
                session.execute(
                    update(SubscriptionRow)
                    .where(SubscriptionRow.token.in_(tokens))
                    .values(account=account, connection=connection)
                )


def _group_placements(
    placements: dict[int, tuple[str, int] | None],
) -> list[tuple[str | None, int | None, list[int]]]:
    groups: dict[tuple[str | None, int | None], list[int]] = {}
    for token, where in placements.items():
        key = where if where is not None else (None, None)
        groups.setdefault(key, []).append(token)
    return [
        (acct, conn, sorted(tokens))
        for (acct, conn), tokens in sorted(
            groups.items(), key=lambda item: (str(item[0][0]), item[0][1] or 0)
        )
    ]


@contextmanager
def _released(lock: threading.Lock) -> Iterator[None]:
    try:
        yield
    finally:
        lock.release()
