"""The fleet's two doors as real processes: the API and Flower, loopback or a real secret.

``python -m producers.api`` and ``celery -A workers flower`` are started as ``make run``
starts them; a refusal must come before anything listens, an API with a key must show
callers without it the public health summary only.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the venv
import pytest
import redis

from tests.support.ports import free_port, wait_for_port
from tests.support.processes import BIN, FleetProcess
from tests.support.seed import init_database
from tickfleet.config.settings import Settings
from tickfleet.keyspace.keys import Keys
from tickfleet.supervision.failures import RedisFailureLog, TaskFailure

pytestmark = [pytest.mark.timeout(120), pytest.mark.processes]

API_KEY = "Zq8tW2mVx4Lr7Nc1Jp6Hs3Kd9Fb5Gy0A"  # 32 characters
PLANTED_PATH = "/srv/tickfleet-private/feed/ingest.py"
PLANTED_TRACE = f'Traceback (most recent call last):\n  File "{PLANTED_PATH}", line 7\nboom'

Start = Callable[[str, list[str], Mapping[str, str]], FleetProcess]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start processes with their output in ``tmp_path``; every one is stopped at the end."""
    started: list[FleetProcess] = []

    def run(name: str, argv: list[str], env: Mapping[str, str]) -> FleetProcess:
        process = FleetProcess(name, argv, env, tmp_path)
        started.append(process)
        return process

    yield run
    for process in reversed(started):
        process.stop()


def api_env(settings: Settings, host: str, port: int) -> dict[str, str]:
    return {**settings.to_env(), "API_HOST": host, "API_PORT": str(port), "PYTHONUNBUFFERED": "1"}


def run_to_exit(argv: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a process that must end by itself, bounded."""
    return subprocess.run(
        argv, env={**os.environ, **env}, capture_output=True, text=True, timeout=60, check=False
    )


def listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def outside_address() -> str | None:
    """This machine's first non-loopback IPv4 address, if it has one."""
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family == socket.AF_INET and not address.address.startswith("127."):
                return str(address.address)
    return None


# --- the API: start-up refusal ------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "why"),
    [(None, "is not set"), ("admin", "is a known default"), ("x7Rk2pQ9", "is shorter than 16")],
)
def test_the_api_outside_loopback_without_a_real_key_exits_before_listening(
    make_settings: Callable[..., Settings], key: str | None, why: str
) -> None:
    settings = make_settings(api_key=key)
    init_database(settings)
    port = free_port()
    started = time.monotonic()
    result = run_to_exit(
        [str(BIN / "python"), "-m", "producers.api"], api_env(settings, "0.0.0.0", port)
    )
    print(f"refused in {time.monotonic() - started:.2f}s")
    assert result.returncode == 2, result.stderr
    exposed = "refused: the API would listen on 0.0.0.0 (API_HOST), outside loopback"
    assert f"{exposed}, and TICKFLEET_API_KEY {why}" in result.stderr
    assert "Uvicorn running" not in result.stderr + result.stdout
    assert not listening(port)


def test_the_api_outside_loopback_with_a_real_key_starts_and_guards_its_details(
    make_settings: Callable[..., Settings], start: Start, redis_client: redis.Redis
) -> None:
    settings = make_settings(api_key=API_KEY)
    init_database(settings)  # no instruments: the registry-empty problem, a public one
    _plant_failure(redis_client, settings)
    port = free_port()
    argv = [str(BIN / "python"), "-m", "producers.api"]
    api = start("api", argv, api_env(settings, "0.0.0.0", port))
    wait_for_port(port, timeout=30)
    assert "the API is open" not in api.log()
    hosts = ["127.0.0.1", *filter(None, [outside_address()])]
    for host in hosts:
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=10) as client:
            _public_health_is_a_summary(client)
            _metrics_and_changes_need_the_key(client)
    print(f"checked through {hosts}")


def _plant_failure(client: redis.Redis, settings: Settings) -> None:
    """A supervised task's failure, with a traceback naming a file, as the fleet records it."""
    failure = TaskFailure(
        task="stream kite:primary",
        context={"worker": "stream@planted-host-7", "pid": "4242"},
        exc_type="OSError",
        message=f"cannot open {PLANTED_PATH}",
        traceback=PLANTED_TRACE,
        at=1.0,
    )
    RedisFailureLog(client, Keys(settings.key_prefix).task_failures).record(failure)


def _public_health_is_a_summary(client: httpx.Client) -> None:
    public = client.get("/health")
    keyed = client.get("/health", headers={"X-API-Key": API_KEY})
    assert public.status_code == keyed.status_code == 200
    assert set(public.json()) == {"status", "problems", "warnings", "detail"}
    assert public.json()["status"] == keyed.json()["status"] == "degraded"
    assert "the instrument registry is empty (run `tickfleet init-db`)" in public.json()["problems"]
    for planted in (PLANTED_PATH, "Traceback", "planted-host-7", "4242", str(os.getpid())):
        assert planted not in public.text, planted
    assert PLANTED_PATH in keyed.text and "planted-host-7" in keyed.text
    assert keyed.json()["failures"][0]["traceback"] == PLANTED_TRACE
    bearer = client.get("/health", headers={"Authorization": f"Bearer {API_KEY}"})
    assert bearer.json()["failures"] == keyed.json()["failures"]
    wrong = client.get("/health", headers={"X-API-Key": API_KEY[:-1] + "B"})
    assert set(wrong.json()) == set(public.json())


def _metrics_and_changes_need_the_key(client: httpx.Client) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"X-API-Key": API_KEY}).status_code == 200
    bearer = client.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"})
    assert bearer.status_code == 200 and "subscriptions_active" in bearer.text
    for method, path in [
        ("POST", "/subscriptions"),
        ("DELETE", "/subscriptions/256265"),
        ("POST", "/admin/reload"),
        ("POST", "/admin/instrument-refresh"),
        ("POST", "/admin/accounts/primary/token"),
    ]:
        assert client.request(method, path, json={}).status_code == 401, path
    keyed = client.post("/admin/reload", headers={"X-API-Key": API_KEY})
    assert keyed.status_code == 200, keyed.text


def test_the_api_on_loopback_without_a_key_starts_and_says_it_is_open(
    make_settings: Callable[..., Settings], start: Start
) -> None:
    settings = make_settings()
    init_database(settings)
    port = free_port()
    api = start(
        "api", [str(BIN / "python"), "-m", "producers.api"], api_env(settings, "127.0.0.1", port)
    )
    wait_for_port(port, timeout=30)
    api.wait_for_log("the API is open: no TICKFLEET_API_KEY")
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert "redis" in client.get("/health").json()  # open: the full document
        assert client.get("/metrics").status_code == 200


def test_an_api_bound_outside_loopback_some_other_way_answers_loopback_only(
    make_settings: Callable[..., Settings], start: Start
) -> None:
    """``uvicorn --host 0.0.0.0`` with ``API_HOST`` unset: no start-up refusal, so each
    request is judged by the address it arrived on."""
    outside = outside_address()
    if outside is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    settings = make_settings()
    init_database(settings)
    port = free_port()
    argv = [str(BIN / "uvicorn"), "producers.api:app", "--host", "0.0.0.0", "--port", str(port)]
    start("api", argv, {**settings.to_env(), "PYTHONUNBUFFERED": "1"})
    wait_for_port(port, timeout=30)
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    refused = httpx.get(f"http://{outside}:{port}/health", timeout=10)
    assert refused.status_code == 403
    assert "loopback only: TICKFLEET_API_KEY is not set" in refused.text
    assert httpx.post(f"http://{outside}:{port}/admin/reload", timeout=10).status_code == 403


# --- Flower -----------------------------------------------------------------------------


def flower_argv(port: int, *flags: str) -> list[str]:
    return [str(BIN / "celery"), "-A", "workers", "flower", f"--port={port}", *flags]


@pytest.mark.parametrize(
    ("flags", "why"),
    [((), "is not set"), (("--basic-auth=admin:tickfleet",), "is a known default")],
)
def test_flower_outside_loopback_without_a_real_password_exits_before_listening(
    redis_url: str, flags: tuple[str, ...], why: str
) -> None:
    port = free_port()
    env = {"REDIS_URL": redis_url, "FLOWER_BASIC_AUTH": ""}
    result = run_to_exit(flower_argv(port, "--address=0.0.0.0", *flags), env)
    assert result.returncode != 0
    assert "refused: Flower would listen on 0.0.0.0" in result.stderr
    assert f"the FLOWER_BASIC_AUTH password {why}" in result.stderr
    assert not listening(port)


def test_flower_without_an_address_listens_on_loopback_only(redis_url: str, start: Start) -> None:
    port = free_port()
    flower = start("flower", flower_argv(port), {"REDIS_URL": redis_url, "FLOWER_ADDRESS": ""})
    wait_for_port(port, timeout=60)
    listeners = {
        c.laddr.ip
        for c in psutil.Process(flower.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }
    assert listeners == {"127.0.0.1"}
    outside = outside_address()
    if outside is not None:
        assert not listening(port, outside)
