"""SQL engine, schema and the database's identity: SQLite by default, PostgreSQL in production.

A fleet must never run on a database it was not set up with: an empty SQLite file that a
mistyped path created would look like "no subscriptions" and a reload would stop every
stream. So opening never creates anything. ``tickfleet init-db`` migrates the schema to
the newest revision (``tickfleet.migrations``) and stamps the database with a random id;
every other process refuses a database that has no stamp, and a reload refuses one whose
id differs from the fleet's.

Every wait is bounded by ``TICKFLEET_DATABASE_TIMEOUT_SECONDS``: a write lock held on the
SQLite file once made ``POST /subscriptions`` hang 30 s and then fail with a 500. Now a
locked, unreachable or slow database raises ``OperationalError`` within the bound, and
``is_unavailable`` tells callers that such an error is the database's state, not a bug.
"""

from __future__ import annotations

import math
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, String, create_engine, event, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from tickfleet.config.settings import Settings

INIT_HINT = "run `tickfleet init-db` to create it"
DEFAULT_TIMEOUT_SECONDS: float = Settings.model_fields["database_timeout_seconds"].default


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
    # WAL: readers never wait for a writer (the API reads while a worker writes), and
    # synchronous=NORMAL is durable in WAL mode up to the last checkpointed commit. Both
    # are set on every connection: synchronous does not persist in the file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
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


def _sqlite_engine(url: str, timeout: float) -> Engine:
    # sqlite3's timeout is SQLite's busy timeout: how long a statement waits for a lock.
    pooled = {"pool_timeout": timeout} if sqlite_path(url) is not None else {}
    engine = create_engine(url, connect_args={"timeout": timeout}, **pooled)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _postgres_connect_args(url: URL, timeout: float) -> dict[str, Any]:
    """libpq's connect timeout (whole seconds, at least 2) and server-side lock and
    statement timeouts, appended to any ``options`` the URL already carries.

    The lock timeout is set a little under the statement timeout, which would otherwise
    always fire first: a wait for a lock then says so ("lock timeout") in the error.
    """
    given = url.query.get("options", ())
    millis = max(2, round(timeout * 1000))
    options = [
        *([given] if isinstance(given, str) else given),
        f"-c lock_timeout={millis * 4 // 5}",
        f"-c statement_timeout={millis}",
    ]
    return {"connect_timeout": max(2, math.ceil(timeout)), "options": " ".join(options)}


def make_engine(
    url: str, *, create: bool = False, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> Engine:
    """An engine for ``url`` on which no wait outlasts ``timeout`` seconds (a lock, a
    connection, a statement, a pooled connection). A SQLite file must exist unless
    ``create`` (init-db) is set."""
    parsed = make_url(url)
    path = sqlite_path(url)
    if path is not None:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise DatabaseNotReadyError(f"no database file at {path}: {INIT_HINT}")
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, timeout)
    if parsed.get_backend_name() != "postgresql":
        return create_engine(parsed, pool_pre_ping=True, pool_timeout=timeout)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_timeout=timeout,
        connect_args=_postgres_connect_args(parsed, timeout),
    )


# SQLite primary result codes of a busy, locked, unopenable or failing file.
_SQLITE_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR,
}
# PostgreSQL SQLSTATE classes: connection exception, insufficient resources, operator
# intervention (57014 is a statement_timeout); and 55P03, a lock_timeout.
_POSTGRES_UNAVAILABLE_CLASSES = {"08", "53", "57"}
_POSTGRES_LOCK_NOT_AVAILABLE = "55P03"


def _driver_unavailable(error: object) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in _SQLITE_UNAVAILABLE
    if not hasattr(error, "sqlstate"):
        return False
    state = error.sqlstate
    if state is None:  # psycopg's own: the connection failed, timed out or broke
        return True
    return state[:2] in _POSTGRES_UNAVAILABLE_CLASSES or state == _POSTGRES_LOCK_NOT_AVAILABLE


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is locked, unreachable or too slow right now: a
    state to answer with 503 and retry, unlike a missing table or a violated key."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection within pool_timeout
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    return exc.connection_invalidated or _driver_unavailable(exc.orig)


def stamp(engine: Engine, now: datetime) -> str:
    """Stamp a migrated database with a random id once; returns its id (kept on re-runs).
    ``tickfleet.migrations.initialise`` migrates, then stamps."""
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
    """The id ``stamp`` left; raises ``DatabaseNotReadyError`` when there is none."""
    try:
        with engine.connect() as conn:
            found = conn.scalar(select(MetaRow.value).where(MetaRow.key == "database_id"))
    except sa_exc.SQLAlchemyError as exc:
        if is_unavailable(exc):
            raise  # down or locked, not uninitialised: `init-db` would not help
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
