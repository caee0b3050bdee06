"""The subscription store: which instrument tokens the fleet streams, in which mode.

Rows are deactivated, never deleted, so an operator can always see what was asked for,
when, and why it stopped. Writes are upserts that behave the same on SQLite and
PostgreSQL, so concurrent requests for one token never fail on a unique key.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, String, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from tickfleet.db import Base, SessionFactory, transaction


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
    token: int
    mode: Mode = Mode.FULL
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


def _from_row(row: SubscriptionRow) -> Subscription:
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


def _upsert(session: Session, values: list[dict[str, object]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(SubscriptionRow).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[SubscriptionRow.token],
        set_={
            "mode": stmt.excluded.mode,
            "pinned_account": stmt.excluded.pinned_account,
            "status": Status.ACTIVE.value,
            "reason": None,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    session.execute(stmt)


class SubscriptionStore:
    """SQL-backed subscriptions; every method is one transaction."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def upsert_many(
        self, requests: Sequence[SubscriptionRequest], now: datetime
    ) -> list[Subscription]:
        """Create or re-activate subscriptions, all or none; returns their new state."""
        now = _utc(now)
        by_token = {r.token: r for r in requests}  # the last request for a token wins
        values: list[dict[str, object]] = [
            {
                "token": r.token,
                "mode": r.mode.value,
                "pinned_account": r.pinned_account,
                "status": Status.ACTIVE.value,
                "created_at": now,
                "updated_at": now,
            }
            for r in by_token.values()
        ]
        if not values:
            return []
        with transaction(self._sessions) as session:
            _upsert(session, values)
            rows = session.scalars(
                select(SubscriptionRow).where(SubscriptionRow.token.in_(by_token))
            ).all()
            return sorted((_from_row(r) for r in rows), key=lambda s: s.token)

    def deactivate(self, tokens: Iterable[int], reason: str, now: datetime) -> list[int]:
        """Mark active subscriptions inactive; returns the tokens that changed."""
        now = _utc(now)
        wanted = list(tokens)
        if not wanted:
            return []
        with transaction(self._sessions) as session:
            changed = session.scalars(
                update(SubscriptionRow)
                .where(
                    SubscriptionRow.token.in_(wanted), SubscriptionRow.status == Status.ACTIVE.value
                )
                .values(
                    status=Status.INACTIVE.value,
                    reason=reason,
                    updated_at=now,
                    account=None,
                    connection=None,
                )
                .returning(SubscriptionRow.token)
            ).all()
            return sorted(changed)

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
        query = (
            select(SubscriptionRow.pinned_account, func.count())
            .where(SubscriptionRow.status == Status.ACTIVE.value)
            .group_by(SubscriptionRow.pinned_account)
        )
        with self._sessions() as session:
            return {pin: int(n) for pin, n in session.execute(query)}

    def active_pins(self, tokens: Iterable[int]) -> dict[int, str | None]:
        """The pinned account of each of ``tokens`` that is active now."""
        wanted = sorted(set(tokens))
        found: dict[int, str | None] = {}
        with self._sessions() as session:
            for start in range(0, len(wanted), 500):
                query = select(SubscriptionRow.token, SubscriptionRow.pinned_account).where(
                    SubscriptionRow.token.in_(wanted[start : start + 500]),
                    SubscriptionRow.status == Status.ACTIVE.value,
                )
                found.update((token, pin) for token, pin in session.execute(query))
        return found

    def counts(self) -> dict[str, int]:
        query = select(SubscriptionRow.status, func.count()).group_by(SubscriptionRow.status)
        with self._sessions() as session:
            found = {status: int(n) for status, n in session.execute(query)}
        return {s.value: found.get(s.value, 0) for s in Status}

    def record_placements(self, placements: dict[int, tuple[str, int] | None]) -> None:
        """Store where each active token streams from (None: not placed), for operators."""
        if not placements:
            return
        with transaction(self._sessions) as session:
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
