"""Every ``tickfleet`` command meets its expected failures (Kite, Redis, the API or the
database down or refusing, a database not set up, a missing file, a bad setting or
argument) with a line or two on stderr saying what failed, why and what to do, a non-zero
exit and no traceback. The commands run as an operator runs them: subprocesses, with the
settings in their environment, against a real Redis, real databases and a local Kite."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from producers.kite_sim.local_rest import KiteRestServer
from tests.support.ports import free_port
from tests.support.processes import BIN, run_text
from tests.support.seed import init_database, now_of
from tickfleet.config.settings import Settings
from tickfleet.instruments import OfflineUniverseSource, UniverseSpec
from tickfleet.storage.sql import database_id, make_engine
from tickfleet.wiring.services import Services

pytestmark = [pytest.mark.timeout(120), pytest.mark.processes]
API_KEY = "cli-failure-key"
ACCESS_TOKEN = "cli-failure-access-token-0123"


def tickfleet(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """One command as an operator runs it, only warnings logged: stderr is what it says."""
    return run_text(
        [str(BIN / "tickfleet"), *args],
        env={**os.environ, **settings.to_env(), "TICKFLEET_LOG_LEVEL": "WARNING", **env},
        timeout=60,
    )


LOGGED = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: ")


def said(done: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command said on stderr besides its log records (``init-db`` logs its
    waits for Redis), after checking that no traceback is there."""
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stderr.strip().splitlines() if not LOGGED.match(line)]


def instruments(settings: Settings) -> int:
    services = Services(settings)
    try:
        return services.registry.count()
    finally:
        services.close()


def closed_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_init_db_with_kite_unreachable_says_so_keeps_the_schema_and_completes_later(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    kite = closed_url()
    settings = make_settings(
        database_url=database_url,
        kite_api_key=API_KEY,
        kite_access_token=ACCESS_TOKEN,
        kite_api_url=kite,
    )

    failed = tickfleet(settings, "init-db", "--wait", "5")

    lines = said(failed)
    print(failed.stdout, failed.stderr, sep="\n")
    assert failed.returncode == 1
    assert len(lines) == 2, lines
    assert lines[0].startswith("tickfleet init-db: instruments not loaded: ")
    assert f"kite dump {kite} (configuration token)" in lines[0]  # the source
    assert "Kite could not be reached (connection refused)" in lines[0]  # why
    assert "KITE_API_URL" in lines[1]  # what to do
    assert "TICKFLEET_INSTRUMENTS_CSV" in lines[1]
    assert ACCESS_TOKEN not in failed.stdout + failed.stderr
    engine = make_engine(settings.database_url)
    try:
        stamped = database_id(engine)  # the schema is in place, stamped
    finally:
        engine.dispose()
    assert instruments(settings) == 0

    listed = OfflineUniverseSource(UniverseSpec.from_settings(settings)).fetch(
        now_of(settings).date()
    )
    with KiteRestServer({API_KEY: ACCESS_TOKEN}, instruments=listed) as rest:
        done = tickfleet(settings.model_copy(update={"kite_api_url": rest.url}), "init-db")

    assert done.returncode == 0, done.stderr
    assert f"(id {stamped})" in done.stdout  # the same database, completed
    assert f"total {len(listed)}" in done.stdout
    assert instruments(settings) == len(listed)


@dataclass
class World:
    """What a case's command meets: the test's settings, an initialised database unless
    the case says otherwise, and whatever the case started (stopped after it)."""

    settings: Settings
    tmp: Path
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    def kite_refusing(self) -> str:
        """A local Kite that knows the api key with another access token."""
        rest = KiteRestServer({API_KEY: "a-newer-access-token-4567"}).start()
        self.cleanups.append(rest.stop)
        return rest.url


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    env: Callable[[World], dict[str, str]]
    code: int
    says: tuple[str, ...]  # in its first line
    remedy: str | None = None  # in its second line
    initialised: bool = True
    logged: bool = False  # the command itself logs the failure and says nothing else


def _no_redis(_world: World) -> dict[str, str]:
    return {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}


def _no_api(_world: World) -> dict[str, str]:
    url = closed_url().removeprefix("http://")
    host, port = url.split(":")
    return {"API_HOST": host, "API_PORT": port}


def _kite_refusing(world: World) -> dict[str, str]:
    return {
        "KITE_API_KEY": API_KEY,
        "KITE_ACCESS_TOKEN": ACCESS_TOKEN,
        "KITE_API_URL": world.kite_refusing(),
    }


def _file(name: str, variable: str) -> Callable[[World], dict[str, str]]:
    return lambda world: {variable: str(world.tmp / name)}


def _empty_file(world: World) -> dict[str, str]:
    (world.tmp / "empty.db").touch()
    return {"DATABASE_URL": f"sqlite:///{world.tmp / 'empty.db'}"}


def _postgres_down(_world: World) -> dict[str, str]:
    return {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/test"}


def _nothing(_world: World) -> dict[str, str]:
    return {}


REDIS = "start redis-server, or check REDIS_URL"
API = "start the API (python -m producers.api)"
INIT = "run `tickfleet init-db` to create it"
HISTORY = ("history", "256265", "--from", "2026-06-01T09:15", "--to", "2026-06-01T10:15")

CASES = {
    "kite refused": Case(
        ("refresh-instruments",),
        _kite_refusing,
        1,
        ("instruments not loaded: kite dump", "TokenException (HTTP 403)"),
        "renew the access token",
    ),
    "instruments file missing": Case(
        ("refresh-instruments",),
        _file("nope.csv", "TICKFLEET_INSTRUMENTS_CSV"),
        1,
        ("nope.csv: No such file or directory",),
        "point TICKFLEET_INSTRUMENTS_CSV at a readable instruments dump",
    ),
    "accounts file missing": Case(
        ("refresh-instruments",),
        _file("accounts.json", "TICKFLEET_ACCOUNTS_FILE"),
        2,
        ("cannot read accounts file", "accounts.json"),
        "fix TICKFLEET_ACCOUNTS_FILE or TICKFLEET_ACCOUNTS",
    ),
    "reload, redis down": Case(("reload",), _no_redis, 1, ("Redis did not answer",), REDIS),
    "reload --now, redis down": Case(
        ("reload", "--now"), _no_redis, 1, ("Redis did not answer",), REDIS
    ),
    "init-db, redis down": Case(
        ("init-db", "--wait", "1"), _no_redis, 1, ("Redis did not answer",), REDIS, False
    ),
    "tail, redis down": Case(
        ("tail", "--seconds", "1"), _no_redis, 1, ("Redis did not answer",), REDIS
    ),
    "chain, redis down": Case(("chain", "--once"), _no_redis, 1, ("Redis did not answer",), REDIS),
    "status, api down": Case(("status",), _no_api, 1, ("unreachable", "Connection refused"), API),
    "subscribe, api down": Case(("subscribe", "1", "2"), _no_api, 1, ("unreachable",), API),
    "unsubscribe, api down": Case(("unsubscribe", "1", "2"), _no_api, 1, ("unreachable",), API),
    "database missing": Case(
        ("refresh-instruments",), _nothing, 2, ("no database file", INIT), None, False
    ),
    "database never initialised": Case(
        ("reload", "--now"), _empty_file, 2, ("has no tickfleet schema", INIT), None, False
    ),
    "history, database missing": Case(HISTORY, _nothing, 2, ("no database file",), None, False),
    "postgresql down": Case(
        ("refresh-instruments",),
        _postgres_down,
        1,
        ("the database is unavailable: connection failed",),
        "check DATABASE_URL",
        False,
    ),
    "bad setting": Case(
        ("reload",),
        lambda _w: {"TICKFLEET_DATABASE_TIMEOUT_SECONDS": "-1"},
        2,
        ("bad setting: database_timeout_seconds: Input should be greater than 0",),
        "fix the environment variable",
    ),
    "bad selection": Case(
        ("subscribe", "NIFTY", "2026-13-01", "24000"),
        _nothing,
        2,
        ("expiry must be YYYY-MM-DD, not '2026-13-01'",),
        "name tokens, or UNDERLYING EXPIRY STRIKE[-STRIKE] [CE|PE]",
    ),
    "reload --now, empty registry": Case(
        ("reload", "--now"),
        _nothing,
        1,
        ("reload failed", "the instrument registry is empty"),
        logged=True,
    ),
    "bad argument": Case(
        ("history", "1", "--from", "soon", "--to", "later"),
        _nothing,
        2,
        ("tickfleet history: argument --from: invalid fromisoformat value: 'soon'",),
        "see `tickfleet history -h`",
    ),
}


@pytest.fixture
def world(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[World]:
    made = World(make_settings(), tmp_path)
    yield made
    for cleanup in made.cleanups:
        cleanup()


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_an_expected_failure_is_said_in_two_lines_without_a_traceback(
    world: World, case: Case
) -> None:
    if case.initialised:
        init_database(world.settings)

    done = tickfleet(world.settings, *case.argv, **case.env(world))

    lines = said(done)
    print(done.stdout, done.stderr, sep="\n")
    assert done.returncode == case.code
    if case.logged:
        assert lines == []
        lines = done.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, lines
    for words in case.says:
        assert words in lines[0]
    if case.remedy is not None:
        assert case.remedy in lines[1]
    assert ACCESS_TOKEN not in done.stdout + done.stderr
