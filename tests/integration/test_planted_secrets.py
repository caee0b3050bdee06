"""Planted secrets never show: a real live fleet run with known secret values, then a grep.

The fleet (API, control and stream workers, beat, Flower) runs against a local Kite
server with a planted API key, Redis password, Flower password, Kite api secret and two
access tokens (one configured, one posted through the API after Kite refused the
first). After subscriptions, a reload and the token change, every place an operator or
an attacker could read is searched for every planted value: each process's log, the
public and keyed ``/health``, ``/metrics``, the tasks' arguments as the broker holds
them, as ``celery inspect`` and as Flower show them, and every value in Redis. The one
place a token must be is the session store's token hash, and only the posted one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from producers.kite_sim.local_server import KiteServer
from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import BIN, FleetProcess
from tests.support.redis_server import RedisServer
from tests.support.seed import seed_universe
from tickfleet.config.settings import Settings
from tickfleet.instruments.universe import INDEX_TOKEN
from tickfleet.keyspace.keys import Keys

pytestmark = pytest.mark.timeout(240)

ACCOUNT = "primary"
KITE_API_KEY = "kiteapikey4planted"  # an identifier Kite puts in URLs, not a secret
SECRETS = {
    "TICKFLEET_API_KEY": "planted-api-key-Q7wX2mR9vL4tB8nC",
    "the Redis password": "planted-redis-pw-H3kZ6pD1sF5gJ0",
    "the Flower password": "planted-flower-pw-Y2uE8iO4aS6dN1",
    "KITE_API_SECRET": "planted-kite-secret-M5bV9cX3zL7kW2",
    "the configured access token": "planted-day1-token-T4rG8hJ2kP6",
    "the posted access token": "planted-day2-token-U9yT3rE7wQ1",
}
MONITOR = "redis-commands"
DATABASE_PASSWORD = "planted-db-pw-R6nM1qA8sW3eD5"  # PostgreSQL (trust) ignores it
DAY_1, DAY_2 = SECRETS["the configured access token"], SECRETS["the posted access token"]
KEYED = {"X-API-Key": SECRETS["TICKFLEET_API_KEY"]}


@dataclass
class PlantedFleet:
    settings: Settings
    fleet: Fleet
    api: httpx.Client
    flower: httpx.Client
    kite: KiteServer
    redis: redis.Redis
    tokens: list[int]  # options the Kite server has a price for
    secrets: dict[str, str]  # what was planted: SECRETS, and a database password on PostgreSQL

    def health(self) -> dict[str, object]:
        doc: dict[str, object] = self.api.get("/health", headers=KEYED).json()
        return doc


def _passworded_redis(start: Callable[[], RedisServer]) -> RedisServer:
    """A private redis-server that answers only to the planted password."""
    server = start()
    server.client().config_set("requirepass", SECRETS["the Redis password"])
    return server


def _command_monitor(server: RedisServer, logdir: Path) -> FleetProcess:
    """Every command Redis receives from now on (``MONITOR``): each message the broker
    takes, each value written, whichever process wrote it."""
    argv = ["redis-cli", "-p", str(server.port), "monitor"]
    monitor = FleetProcess(MONITOR, argv, {"REDISCLI_AUTH": SECRETS["the Redis password"]}, logdir)
    wait_until(lambda: "OK" in monitor.log(), 10, 0.05, "MONITOR started")
    return monitor


def _accounts_file(tmp_path: Path) -> Path:
    path = tmp_path / "accounts.json"
    entry = {"account_id": ACCOUNT, "api_key": KITE_API_KEY, "access_token": DAY_1}
    path.write_text(json.dumps([entry]))
    return path


@pytest.fixture
def planted(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_server_factory: Callable[[], RedisServer],
    database_url: str,
    tmp_path: Path,
) -> Iterator[PlantedFleet]:
    secrets = dict(SECRETS)
    if database_url.startswith("postgresql"):
        database_url = database_url.replace("postgres@", f"postgres:{DATABASE_PASSWORD}@", 1)
        secrets["the database password"] = DATABASE_PASSWORD
    with KiteServer({KITE_API_KEY: DAY_1}, interval=0.1, heartbeat_interval=0.5) as kite:
        server = _passworded_redis(redis_server_factory)
        settings = make_settings(
            redis_url=f"redis://:{SECRETS['the Redis password']}@127.0.0.1:{server.port}/0",
            api_key=SECRETS["TICKFLEET_API_KEY"],
            database_url=database_url,
            accounts_file=_accounts_file(tmp_path),
            feed="live",
            kite_ticker_url=kite.url,
            kite_stale_seconds=1.5,
            kite_reconnect_base_seconds=0.1,
            kite_reconnect_max_seconds=1.0,
            kite_session_check_seconds=0.5,
            reload_min_interval_seconds=1.0,
        )
        options = seed_universe(settings, with_expired=False)
        kite.set_price(INDEX_TOKEN, 24_000.0)
        fleet = fleet_factory(settings)
        fleet.processes.append(_command_monitor(server, fleet.logdir))  # stopped last
        fleet.env.update(
            KITE_API_SECRET=SECRETS["KITE_API_SECRET"],
            FLOWER_BASIC_AUTH=f"ops:{SECRETS['the Flower password']}",
        )
        flower_port = free_port()
        flower = FleetProcess(
            "flower",
            [str(BIN / "celery"), "-A", "workers", "flower", f"--port={flower_port}"],
            fleet.env,
            fleet.logdir,
        )
        fleet.processes.append(flower)
        url = fleet.everything()
        wait_for_port(flower_port, timeout=60)
        tokens = [o.instrument_token for o in options[:4]]
        for token in tokens:
            kite.set_price(token, 100.0)
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
        flower_auth = ("ops", SECRETS["the Flower password"])
        try:
            with (
                httpx.Client(base_url=url, timeout=30) as api,
                httpx.Client(base_url=f"http://127.0.0.1:{flower_port}", auth=flower_auth) as fl,
            ):
                yield PlantedFleet(settings, fleet, api, fl, kite, client, tokens, secrets)
        finally:
            client.close()


def test_no_planted_secret_shows_anywhere_but_the_posted_token_in_its_store(
    planted: PlantedFleet,
) -> None:
    started = time.monotonic()
    tokens = _subscribe_and_reload(planted)
    _token_refused_then_posted(planted, tokens)
    print(f"fleet exercised in {time.monotonic() - started:.1f}s")

    places = _logs(planted) | _api_views(planted) | _task_views(planted)
    token_key = Keys(planted.settings.key_prefix).session_token(ACCOUNT)
    values = _redis_values(planted.redis)
    assert DAY_2 in values.pop(token_key), "the posted token is in its store"
    places |= {f"redis {key}": text for key, text in values.items()}
    commands = places.pop(f"{MONITOR} log").splitlines()
    assert any(DAY_2 in c for c in commands if token_key in c), "MONITOR saw the post"
    places["redis commands"] = "\n".join(c for c in commands if token_key not in c)
    places["task message bodies"] = _message_bodies(places["redis commands"])
    assert f'[["{ACCOUNT}"]' in places["task message bodies"], "the stream task's arguments"
    leaks = [
        f"{what} in {place}"
        for place, text in places.items()
        for what, secret in planted.secrets.items()
        if secret in text
    ]
    print(f"searched {len(places)} places ({sum(map(len, places.values()))} characters)")
    assert leaks == []
    assert ACCOUNT in places["celery inspect active"], "the stream task's arguments were read"
    assert "stream_account" in places["flower tasks"], "Flower's task list was read"


def _subscribe_and_reload(planted: PlantedFleet) -> list[int]:
    api, kite = planted.api, planted.kite
    tokens = planted.tokens
    for token in tokens:
        body = {"instrument_token": token, "requested_mode": "FULL", "account_id": ACCOUNT}
        assert api.post("/subscriptions", json=body, headers=KEYED).status_code == 201
    wait_until(lambda: _streamed(kite) >= set(tokens), 60, 0.2, "subscriptions on Kite's side")
    assert api.post("/admin/reload", headers=KEYED).status_code == 200
    assert api.delete(f"/subscriptions/{tokens[-1]}", headers=KEYED).status_code == 200
    wait_until(lambda: tokens[-1] not in _streamed(kite), 30, 0.2, "the unsubscription")
    return tokens[:-1]


def _streamed(kite: KiteServer) -> set[int]:
    return {t for c in kite.clients() if c.open for t in c.subscribed}


def _token_refused_then_posted(planted: PlantedFleet, tokens: list[int]) -> None:
    """A new day: Kite refuses the configured token, an operator posts today's."""
    planted.kite.set_access_token(DAY_2, api_key=KITE_API_KEY)
    planted.kite.drop_connections()
    wait_until(lambda: _session(planted) == "refused", 30, 0.2, "the session refused")
    posted = planted.api.post(
        f"/admin/accounts/{ACCOUNT}/token", json={"access_token": DAY_2}, headers=KEYED
    )
    assert posted.status_code == 202, posted.text
    assert DAY_2 not in posted.text
    wait_until(lambda: _session(planted) == "valid", 30, 0.2, "the session valid again")
    wait_until(lambda: _streamed(planted.kite) >= set(tokens), 30, 0.2, "streaming again")


def _session(planted: PlantedFleet) -> object:
    sessions = planted.health().get("sessions")
    return sessions.get(ACCOUNT, {}).get("state") if isinstance(sessions, dict) else None


def _logs(planted: PlantedFleet) -> dict[str, str]:
    return {f"{p.name} log": p.log() for p in planted.fleet.processes}


def _api_views(planted: PlantedFleet) -> dict[str, str]:
    api = planted.api
    views = {
        "/health": api.get("/health").text,
        "/health with the key": api.get("/health", headers=KEYED).text,
        "/metrics": api.get("/metrics", headers=KEYED).text,
        "/subscriptions": api.get("/subscriptions").text,
    }
    assert "kite_session_valid" in views["/metrics"]
    return views


def _task_views(planted: PlantedFleet) -> dict[str, str]:
    """Task arguments as the broker holds them, as ``celery inspect`` and Flower show them."""
    views = _inspect(planted.fleet, INSPECTED)
    views["flower tasks"] = planted.flower.get("/api/tasks").text
    views["flower workers"] = planted.flower.get("/api/workers").text
    return views


INSPECTED = ("active", "scheduled", "reserved", "revoked", "registered", "stats", "conf")


def _inspect(fleet: Fleet, commands: tuple[str, ...]) -> dict[str, str]:
    """``celery inspect`` each of ``commands`` at once (each waits its reply timeout)."""
    argv = [str(BIN / "celery"), "-A", fleet.app, "inspect"]
    env = {**os.environ, **fleet.env}
    running = {
        what: subprocess.Popen(
            [*argv, what, "--json", "--timeout", "5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for what in commands
    }
    views = {}
    for what, process in running.items():
        try:
            out, err = process.communicate(timeout=60)
        finally:
            process.kill()
        assert process.returncode == 0, err
        views[f"celery inspect {what}"] = out + err
    return views


def _message_bodies(commands: str) -> str:
    """The task messages' bodies (their arguments), which the broker keeps in base64."""
    found = re.findall(r'\\"body\\": \\"([A-Za-z0-9+/=]*)\\"', commands)
    return "\n".join(base64.b64decode(body).decode() for body in found)


def _redis_values(client: redis.Redis) -> dict[str, str]:
    """Every key's value, whatever its type (queued messages are lists, unacked ones hashes)."""
    readers: dict[str, Callable[[bytes], object]] = {
        "string": client.get,
        "hash": client.hgetall,
        "list": lambda k: client.lrange(k, 0, -1),
        "set": client.smembers,
        "zset": lambda k: client.zrange(k, 0, -1, withscores=True),
        "stream": client.xrange,
    }
    values = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        read = readers.get(kind)
        values[key.decode()] = repr(read(key)) if read else f"<{kind}>"
    return values
