"""A locked database or a gone Redis: 503 with a JSON reason within the bound, nothing written.

The first release hung 30 s on a write-locked SQLite file and then answered 500, while
``/health`` called the database ok. Here a real API process runs with a one-second
database timeout; another connection holds the lock a write needs (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: ``LOCK TABLE … EXCLUSIVE``, which readers pass), or the API's
redis-server is stopped, or the network to it swallows packets. Every write must answer
503 within the bound plus slack for process and HTTP overhead, and after the fault
nothing it refused is there.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import Fleet
from tests.support.proxy import StallingProxy
from tests.support.redis_server import RedisServer
from tests.support.seed import seed_universe
from tickfleet.config.settings import Settings
from tickfleet.storage.sql import make_engine, sqlite_path

pytestmark = pytest.mark.timeout(120)

BOUND = 1.0  # TICKFLEET_DATABASE_TIMEOUT_SECONDS and TICKFLEET_REDIS_SOCKET_TIMEOUT
SLACK = 1.5


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def _assert_unavailable(response: httpx.Response, elapsed: float, what: str) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["detail"] == f"{what} unavailable, retry later"
    assert body["retry_after"] == int(response.headers["Retry-After"]) >= 1
    assert elapsed < BOUND + SLACK, f"{elapsed:.2f}s"


def _modes(api: httpx.Client) -> dict[int, str]:
    listed = api.get("/subscriptions", params={"limit": 1000})
    assert listed.status_code == 200
    return {s["instrument_token"]: s["mode"] for s in listed.json() if s["status"] == "active"}


class Api:
    """A real API process on the test's settings and an HTTP client for it."""

    def __init__(self, fleet: Fleet) -> None:
        _, base = fleet.api()
        self.http = httpx.Client(base_url=base, timeout=30)
        self.tokens: list[int] = []


@pytest.fixture
def start_api(fleet_factory: Callable[..., Fleet]) -> Iterator[Callable[[Settings], Api]]:
    started: list[Api] = []

    def start(settings: Settings) -> Api:
        tokens = [o.instrument_token for o in seed_universe(settings)]
        api = Api(fleet_factory(settings))
        api.tokens = tokens
        started.append(api)
        return api

    yield start
    for api in started:
        api.http.close()


# --- the database ------------------------------------------------------------------------


@contextmanager
def write_locked(database_url: str) -> Iterator[None]:
    """Another session holds the lock every write needs, as an operator's open transaction
    or a migration would; reads still pass."""
    path = sqlite_path(database_url)
    if path is not None:
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
        return
    engine = make_engine(database_url, timeout=60)
    try:
        with engine.connect() as conn:
            conn.execute(text("LOCK TABLE subscriptions IN EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def test_a_write_locked_database_answers_503_in_time_and_writes_nothing(
    make_settings: Callable[..., Settings],
    database_url: str,
    start_api: Callable[[Settings], Api],
) -> None:
    settings = make_settings(database_url=database_url, database_timeout_seconds=BOUND)
    api = start_api(settings)
    held, new = api.tokens[:2]
    assert api.http.post(
        "/subscriptions", json={"instrument_token": held, "mode": "LTP"}
    ).is_success

    with write_locked(database_url):
        changed, elapsed = _timed(
            lambda: api.http.post("/subscriptions", json={"instrument_token": held, "mode": "FULL"})
        )
        _assert_unavailable(changed, elapsed, "database")
        added, elapsed = _timed(
            lambda: api.http.post("/subscriptions", json=[{"instrument_token": new}])
        )
        _assert_unavailable(added, elapsed, "database")
        deleted, elapsed = _timed(lambda: api.http.delete(f"/subscriptions/{held}"))
        _assert_unavailable(deleted, elapsed, "database")
        health, elapsed = _timed(lambda: api.http.get("/health"))
        assert _modes(api.http) == {held: "LTP"}  # readers pass the lock

    assert elapsed < BOUND + SLACK
    assert health.status_code == 503
    database = health.json()["database"]
    assert (database["ok"], database["writable"]) == (False, False)
    assert database["error"].startswith("not writable: ")
    assert _modes(api.http) == {held: "LTP"}, "a refused write left a trace"
    after = api.http.get("/health").json()["database"]
    assert (after["ok"], after["writable"]) == (True, True)
    again = api.http.post("/subscriptions", json={"instrument_token": new})
    assert again.status_code == 201


# --- Redis ------------------------------------------------------------------------------


@pytest.fixture
def own_redis(redis_server_factory: Callable[[], RedisServer]) -> RedisServer:
    return redis_server_factory()


@pytest.fixture
def proxy(own_redis: RedisServer) -> Iterator[StallingProxy]:
    """The API's way to its Redis, which the test can cut like a dead network."""
    stalling = StallingProxy(own_redis.port).start()
    yield stalling
    stalling.close()


@pytest.fixture
def api_on_redis(
    make_settings: Callable[..., Settings], start_api: Callable[[Settings], Api]
) -> Callable[[str], Api]:
    """An API on the Redis at a URL, with one LTP subscription written."""

    def start(url: str) -> Api:
        api = start_api(make_settings(redis_url=url, redis_socket_timeout=BOUND))
        first = {"instrument_token": api.tokens[0], "mode": "LTP"}
        assert api.http.post("/subscriptions", json=first).is_success
        return api

    return start


def _writes(api: Api) -> dict[str, Callable[[], httpx.Response]]:
    held, new = api.tokens[:2]
    return {
        "update": lambda: api.http.post(
            "/subscriptions", json={"instrument_token": held, "mode": "FULL"}
        ),
        "create": lambda: api.http.post("/subscriptions", json={"instrument_token": new}),
        "delete": lambda: api.http.delete(f"/subscriptions/{held}"),
        "reload": lambda: api.http.post("/admin/reload"),
        "refresh": lambda: api.http.post("/admin/instrument-refresh"),
    }


def _refused_in_time(api: Api) -> dict[str, float]:
    """Every write answers 503 within the bound; the seconds each took."""
    took: dict[str, float] = {}
    for name, write in _writes(api).items():
        response, took[name] = _timed(write)
        _assert_unavailable(response, took[name], "Redis")
    return took


def test_writes_answer_503_in_time_while_redis_is_stopped(
    api_on_redis: Callable[[str], Api], own_redis: RedisServer
) -> None:
    redis_api = api_on_redis(own_redis.url)
    own_redis.stop()

    took = _refused_in_time(redis_api)

    assert max(took.values()) < BOUND + SLACK, took
    assert _modes(redis_api.http) == {redis_api.tokens[0]: "LTP"}, "nothing was written"
    own_redis.start()
    recovered = redis_api.http.post(
        "/subscriptions", json={"instrument_token": redis_api.tokens[1]}
    )
    assert recovered.status_code == 201
    assert recovered.json()["reload"]["requested"] is True


def test_writes_answer_503_in_time_while_redis_hangs(
    api_on_redis: Callable[[str], Api], proxy: StallingProxy
) -> None:
    """A network that swallows packets: nothing refuses, the socket timeout bounds the wait."""
    redis_api = api_on_redis(proxy.url)
    proxy.stall()
    try:
        took = _refused_in_time(redis_api)
        health, took["health"] = _timed(lambda: redis_api.http.get("/health"))
    finally:
        proxy.resume()

    assert health.status_code == 503 and health.json()["redis"]["ok"] is False
    assert took["health"] < BOUND + SLACK, took  # /health says so in time too

    assert min(took.values()) >= BOUND * 0.9, took  # it did wait for Redis, up to the bound
    assert _modes(redis_api.http) == {redis_api.tokens[0]: "LTP"}, "nothing was written"
