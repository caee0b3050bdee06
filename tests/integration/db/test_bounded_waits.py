"""No database wait outlasts ``TICKFLEET_DATABASE_TIMEOUT_SECONDS`` (0.5 s here).

A write lock held on the SQLite file once made ``POST /subscriptions`` hang 30 s and fail
with a 500. Each test holds a lock, stalls a server or empties the pool the way an
operator's session or a stuck process would, and times the fleet's engine: it must raise
``OperationalError`` (or the pool's ``TimeoutError``) within the bound plus a second, and
``is_unavailable`` must call that the database's state. WAL keeps readers out of it.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from sqlalchemy import Connection, text
from sqlalchemy import exc as sa_exc

from tests.support.instants import FLEET_NOW
from tests.support.seed import init_database
from tickfleet.config.settings import Settings
from tickfleet.storage.sql import is_unavailable, make_engine, sqlite_path
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = pytest.mark.timeout(30)

BOUND = 0.5
SLACK = 1.0
TOKEN = 256265


@pytest.fixture
def fleet(database_url: str) -> Iterator[Services]:
    """An initialised database with one subscription, and the fleet's services on it."""
    settings = Settings(database_url=database_url, database_timeout_seconds=BOUND)
    init_database(settings)
    services = Services(settings)
    services.subscriptions.upsert_many([SubscriptionRequest(TOKEN)], FLEET_NOW)
    yield services
    services.close()


def _timed(call: Callable[[], object]) -> tuple[BaseException, float]:
    """The error ``call`` raised and the seconds it took to raise it."""
    start = time.monotonic()
    with pytest.raises((sa_exc.OperationalError, sa_exc.TimeoutError)) as caught:
        call()
    return caught.value, time.monotonic() - start


def _subscribe(services: Services) -> Callable[[], object]:
    return lambda: services.subscriptions.upsert_many([SubscriptionRequest(TOKEN)], FLEET_NOW)


sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
postgres_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@pytest.fixture
def writer(fleet: Services) -> Iterator[sqlite3.Connection]:
    """Another process's connection holding the SQLite file's write lock, with a change
    it has not committed."""
    path = sqlite_path(fleet.settings.database_url)
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE subscriptions SET status = 'inactive'")
    yield holder
    holder.rollback()
    holder.close()


@sqlite_only
def test_a_write_to_a_locked_sqlite_file_fails_within_the_bound(
    fleet: Services, writer: sqlite3.Connection
) -> None:
    error, elapsed = _timed(_subscribe(fleet))

    assert "database is locked" in str(error)
    assert is_unavailable(error)
    assert BOUND * 0.9 <= elapsed < BOUND + SLACK


@sqlite_only
def test_a_sqlite_reader_does_not_wait_for_the_writer(
    fleet: Services, writer: sqlite3.Connection
) -> None:
    start = time.monotonic()
    active = fleet.subscriptions.active()
    elapsed = time.monotonic() - start

    assert [s.token for s in active] == [TOKEN]  # the last committed state
    assert elapsed < BOUND / 2
    with fleet.engine.connect() as conn:
        assert conn.scalar(text("PRAGMA journal_mode")) == "wal"
        assert conn.scalar(text("PRAGMA synchronous")) == 1  # NORMAL


@sqlite_only
def test_an_empty_pool_fails_within_the_bound(fleet: Services) -> None:
    with ExitStack() as held:
        pool = fleet.engine.pool
        for _ in range(pool.size() + fleet.engine.pool._max_overflow):  # type: ignore[attr-defined]
            held.enter_context(fleet.engine.connect())
        error, elapsed = _timed(fleet.engine.connect)

    assert isinstance(error, sa_exc.TimeoutError)
    assert is_unavailable(error)
    assert BOUND * 0.9 <= elapsed < BOUND + SLACK


@pytest.fixture
def row_lock(fleet: Services) -> Iterator[Connection]:
    """Another session holding the subscription's row lock, as ``SELECT … FOR UPDATE``."""
    other = make_engine(fleet.settings.database_url, timeout=30)
    conn = other.connect()
    conn.execute(text("SELECT token FROM subscriptions WHERE token = :t FOR UPDATE"), {"t": TOKEN})
    yield conn
    conn.rollback()
    conn.close()
    other.dispose()


@postgres_only
def test_a_write_to_a_locked_postgres_row_fails_within_the_bound(
    fleet: Services, row_lock: Connection
) -> None:
    error, elapsed = _timed(_subscribe(fleet))

    assert "lock timeout" in str(error)
    assert is_unavailable(error)
    assert BOUND * 0.8 * 0.9 <= elapsed < BOUND + SLACK  # the lock timeout is 4/5 of the bound


@postgres_only
def test_a_slow_postgres_statement_is_cancelled_within_the_bound(fleet: Services) -> None:
    def sleep() -> None:
        with fleet.engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(5)"))

    error, elapsed = _timed(sleep)

    assert "statement timeout" in str(error)
    assert is_unavailable(error)
    assert BOUND * 0.9 <= elapsed < BOUND + SLACK


@postgres_only
def test_postgres_connections_keep_the_urls_options(fleet: Services) -> None:
    with fleet.engine.connect() as conn:
        assert conn.scalar(text("SHOW lock_timeout")) == "400ms"
        assert conn.scalar(text("SHOW statement_timeout")) == "500ms"
        assert conn.scalar(text("SHOW search_path")).startswith("tf_")  # the test's schema


def test_a_server_that_never_answers_fails_within_the_connect_timeout() -> None:
    # The kernel completes the handshake into the backlog; nothing ever speaks PostgreSQL.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        engine = make_engine(f"postgresql://tickfleet@127.0.0.1:{port}/tickfleet", timeout=BOUND)
        try:
            error, elapsed = _timed(engine.connect)
        finally:
            engine.dispose()

    assert is_unavailable(error)
    assert elapsed < 2 + SLACK  # libpq's shortest connect timeout is 2 s


def test_a_missing_table_is_not_unavailability(database_url: str) -> None:
    engine = make_engine(database_url, create=True, timeout=BOUND)
    try:
        with pytest.raises(sa_exc.DBAPIError) as caught, engine.connect() as conn:
            conn.execute(text("SELECT * FROM nowhere"))
    finally:
        engine.dispose()

    assert not is_unavailable(caught.value)
