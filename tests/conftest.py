"""Fixtures shared by the whole suite: real redis-server, real databases, real fleet processes.

Every fixture that starts something is a factory that stops what it started.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from tests.support.instants import FLEET_NOW, offset_to
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import (
    BIN,
    FleetProcess,
    celery_worker_argv,
    stop_zygote,
    stream_worker_argv,
)
from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer
from tests.support.serial import SERIAL_MARK, SerialGate
from tickfleet.config.settings import Settings

POSTGRES_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


PROCESS_FIXTURES = frozenset(
    {"fleet_factory", "redis_server_factory", "redis_cluster", "start_fleet"}
)
GATE = pytest.StashKey[SerialGate]()


def _starts_processes(item: pytest.Item) -> bool:
    """A test that starts fleet processes or redis-servers of its own: the ones that load
    the machine, and so the ones that wait for the serial tests."""
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & PROCESS_FIXTURES) or item.get_closest_marker("processes") is not None


def _runs_first(item: pytest.Item) -> tuple[bool, bool]:
    """Serial tests; then the tests that start no processes (unit tests and light
    integration tests), which run beside them; then those that start processes."""
    return item.get_closest_marker(SERIAL_MARK) is None, _starts_processes(item)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark integration tests. Under xdist, order the tests: the serial ones first, which
    take turns (tests.support.serial), then those that start no processes, which run
    meanwhile, then those that start processes, which wait for the serial ones to end."""
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    if hasattr(config, "workerinput"):
        items.sort(key=_runs_first)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under xdist, serial tests run first and alone: see tests.support.serial."""
    config = session.config
    if not hasattr(config, "workerinput"):
        return
    serial = sum(1 for item in session.items if item.get_closest_marker(SERIAL_MARK))
    shared = Path(config.getoption("basetemp")).parent  # xdist gives each worker <shared>/gwN
    config.stash[GATE] = SerialGate(shared / "serial-gate", serial)


def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_zygote()


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Outside the test's timeout: a serial test takes its turn; a test that starts no
    processes runs beside them; every other test waits for the last of them."""
    gate = item.config.stash.get(GATE, None)
    if gate is not None and item.get_closest_marker(SERIAL_MARK):
        with gate.alone(item.nodeid):
            yield
        return
    if gate is not None and _starts_processes(item):
        gate.wait()
    yield


# --- Redis ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's redis-server, emptied for this test."""
    if not redis_server.running:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    yield client
    client.close()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[[], RedisServer]]:
    """Start extra redis-servers the test may stop and restart; all are stopped at the end."""
    started: list[RedisServer] = []

    def start() -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(started)}").start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    """A local Redis Cluster (three masters, one replica each), stopped at the end."""
    cluster = RedisClusterServers(tmp_path / "cluster").start()
    yield cluster
    cluster.stop()


# --- databases --------------------------------------------------------------------------


@lru_cache(maxsize=1)
def postgres_available() -> bool:
    try:
        with psycopg.connect(
            "host=127.0.0.1 port=5432 dbname=test user=postgres", connect_timeout=2
        ):
            return True
    except Exception:
        return False


def _postgres_schema_url() -> Iterator[str]:
    schema = f"tf_{uuid.uuid4().hex[:12]}"
    dsn = "host=127.0.0.1 port=5432 dbname=test user=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file always, PostgreSQL when one answers."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/tickfleet.db"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL on 127.0.0.1:5432 (db test) does not answer")
    yield from _postgres_schema_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/tickfleet.db"


# --- settings and fleet processes ------------------------------------------------------------


@pytest.fixture
def make_settings(redis_url: str, sqlite_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for this test: its Redis and database, its clock reading ``FLEET_NOW`` as
    the test starts (whatever the real date), its own tick archive (off unless asked), Kite
    on a closed local port, with any field overridden."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "redis_url": redis_url,
            "database_url": sqlite_url,
            "clock_offset_seconds": offset_to(FLEET_NOW),
            # Kite is never asked from a test: a closed loopback port unless a test
            # points these at its local Kite servers.
            "kite_ticker_url": "ws://127.0.0.1:9",
            "kite_api_url": "http://127.0.0.1:9",
            # The recorder costs a fleet test a tenth more CPU and tells it nothing: on
            # where a test is about it (tests/integration/archive, stream resources).
            "archive": False,
            "archive_dir": tmp_path / "archive",
        }
        values.update(overrides)
        return Settings(**values)

    return make


class Fleet:
    """Starts fleet processes for one test with one configuration, and stops them all."""

    def __init__(self, settings: Settings, logdir: Path, app: str = "workers") -> None:
        self.settings = settings
        self.app = app
        self.env = {**settings.to_env(), "PYTHONUNBUFFERED": "1"}
        self.logdir = logdir
        self.processes: list[FleetProcess] = []
        self._unready: list[Callable[[], None]] | None = None

    @contextmanager
    def starting(self) -> Iterator[None]:
        """Processes asked for inside start at once; all are ready when it ends. A fleet
        then starts in the time of its slowest process, not in the sum of all of them."""
        self._unready = []
        try:
            yield
            for wait_ready in self._unready:
                wait_ready()
        finally:
            self._unready = None

    def _ready(self, wait_ready: Callable[[], None]) -> None:
        if self._unready is None:
            wait_ready()
        else:
            self._unready.append(wait_ready)

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> FleetProcess:
        process = FleetProcess(name, argv, {**self.env, **(env or {})}, self.logdir)
        self.processes.append(process)
        return process

    def control_worker(
        self, name: str = "control", concurrency: int = 2, env: dict[str, str] | None = None
    ) -> FleetProcess:
        argv = celery_worker_argv(self.app, name, "control,maintenance", concurrency)
        worker = self._start(name, argv, env)
        self._ready(lambda: worker.wait_for_log("ready."))
        return worker

    def stream_worker(self, name: str = "stream", concurrency: int = 3) -> FleetProcess:
        worker = self._start(name, stream_worker_argv(self.app, name, concurrency))
        self._ready(lambda: worker.wait_for_log("ready."))
        return worker

    def beat(self) -> FleetProcess:
        beat = self._start("beat", [str(BIN / "celery"), "-A", self.app, "beat", "--loglevel=INFO"])
        self._ready(lambda: beat.wait_for_log("beat: Starting"))
        return beat

    def api(self) -> tuple[FleetProcess, str]:
        port = free_port()
        argv = [
            str(BIN / "uvicorn"),
            "producers.api:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        api = self._start("api", argv)
        self._ready(lambda: wait_for_port(port, timeout=30))
        return api, f"http://127.0.0.1:{port}"

    def everything(self, streams: int = 3) -> str:
        """API, control worker, one stream worker (room for ``streams``) and beat, started
        at once; the API's URL."""
        with self.starting():
            _, url = self.api()
            self.control_worker()
            self.stream_worker(concurrency=streams)
            self.beat()
        return url

    def stop(self) -> None:
        """Every process begins its warm shutdown at once: the fleet is down in the time
        of its slowest process, not in the sum of all of them."""
        for process in reversed(self.processes):
            process.terminate()
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def fleet_factory(tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def make(settings: Settings, app: str = "workers") -> Fleet:
        fleet = Fleet(settings, tmp_path, app)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop()
