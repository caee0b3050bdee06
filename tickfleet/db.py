"""SQL engine, schema and the database's identity: SQLite by default, PostgreSQL in production.

A fleet must never run on a database it was not set up with: an empty SQLite file that a
mistyped path created would look like "no subscriptions" and a reload would stop every
stream. So opening never creates anything. ``tickfleet init-db`` creates the schema and
stamps the database with a random id; every other process refuses a database that has no
stamp, and a reload refuses one whose id differs from the fleet's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, String, create_engine, event, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

INIT_HINT = "run `tickfleet init-db` to create it"


class Base(DeclarativeBase):
    """Declarative base of every table of tickfleet."""


class MetaRow(Base):
    """Facts about the database itself: its id and when it was initialised."""

    __tablename__ = "tickfleet_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


class DatabaseNotReadyError(RuntimeError):
    """The database does not exist or was never initialised; the message says where."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; busy_timeout turns lock contention
    # between processes into waiting instead of "database is locked" errors.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def describe(url: str) -> str:
    """The URL with any password hidden, for logs and error messages."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def make_engine(url: str, *, create: bool = False) -> Engine:
    """An engine for ``url``. A SQLite file must exist unless ``create`` (init-db) is set."""
    parsed = make_url(url)
    path = sqlite_path(url)
    if path is not None:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise DatabaseNotReadyError(f"no database file at {path}: {INIT_HINT}")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Create missing tables (idempotent)."""
    # Import the table modules so their classes are registered on Base.metadata.
    from tickfleet import instruments, subscriptions  # noqa: F401, PLC0415 - avoids an import cycle

    Base.metadata.create_all(engine)


def initialise(engine: Engine, now: datetime) -> str:
    """Create the schema and stamp the database once; returns its id (kept on re-runs)."""
    create_schema(engine)
    with engine.begin() as conn:
        existing = conn.scalar(select(MetaRow.value).where(MetaRow.key == "database_id"))
        if existing is not None:
            return existing
        database = uuid.uuid4().hex
        conn.execute(
            insert(MetaRow),
            [
                {"key": "database_id", "value": database},
                {"key": "initialised_at", "value": now.isoformat()},
            ],
        )
        return database


def database_id(engine: Engine) -> str:
    """The id ``initialise`` stamped; raises ``DatabaseNotReadyError`` when there is none."""
    try:
        with engine.connect() as conn:
            found = conn.scalar(select(MetaRow.value).where(MetaRow.key == "database_id"))
    except SQLAlchemyError as exc:
        raise DatabaseNotReadyError(
            f"database {engine.url.render_as_string()} has no tickfleet schema: {INIT_HINT}"
        ) from exc
    if found is None:
        raise DatabaseNotReadyError(
            f"database {engine.url.render_as_string()} was never initialised: {INIT_HINT}"
        )
    return found


SessionFactory = sessionmaker[Session]


def make_session_factory(engine: Engine) -> SessionFactory:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Session]:
    """A session whose work is committed on success and rolled back on any error."""
    with factory() as session, session.begin():
        yield session
