"""``tickfleet status``, ``subscribe``, ``unsubscribe`` and ``chain`` as an operator runs
them: real subprocesses against a real fleet (API, control worker, one stream worker,
beat) in simulated mode, with an API key that the command line must send."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.processes import BIN, ROOT, FleetProcess
from tests.support.seed import seed_universe
from tickfleet.instruments import Instrument
from tickfleet.settings import Settings

pytestmark = pytest.mark.timeout(120)
API_KEY = "cli-status-test-key-0123456789"


@dataclass
class Running:
    fleet: Fleet
    url: str
    stream: FleetProcess
    options: list[Instrument]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        api = ["--api", self.url] if args[0] in ("status", "subscribe", "unsubscribe") else []
        return subprocess.run(
            [str(BIN / "tickfleet"), *args, *api],
            cwd=ROOT,
            env={**os.environ, **self.fleet.env, "COLUMNS": "160"},
            capture_output=True,
            check=False,
            text=True,
            timeout=60,
        )

    def selection(self, n: int) -> tuple[str, str, list[Instrument]]:
        """The nearest expiry, a range of ``n`` strikes at the money, and its calls."""
        expiry = min(o.expiry for o in self.options if o.expiry is not None)
        strikes = sorted({o.strike for o in self.options if o.expiry == expiry})
        middle = min(range(len(strikes)), key=lambda i: abs(strikes[i] - 24000))
        chosen = strikes[middle : middle + n]
        calls = [
            o
            for o in self.options
            if o.expiry == expiry and o.strike in chosen and o.instrument_type == "CE"
        ]
        return expiry.isoformat(), f"{chosen[0]:g}-{chosen[-1]:g}", calls


@pytest.fixture
def running(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> Iterator[Running]:
    settings = make_settings(
        feed="mock",
        api_key=API_KEY,
        mock_tick_interval_seconds=0.3,
        lease_ttl_seconds=3.0,
        lease_renew_seconds=1.0,
        watchdog_interval_seconds=1.0,
        stream_start_grace_seconds=4.0,
        reload_min_interval_seconds=1.0,
        stream_stale_seconds=5.0,
    )
    options = seed_universe(settings, with_expired=False)
    fleet = fleet_factory(settings)
    _, url = fleet.api()
    fleet.control_worker()
    stream = fleet.stream_worker()  # the only one: once it dies, nothing takes its streams
    fleet.beat()
    yield Running(fleet, url, stream, options)


def _until_status(running: Running, code: int, timeout: float, says: str = "") -> str:
    """Run ``tickfleet status`` until it exits with ``code`` and says ``says``; its output."""
    seen: list[subprocess.CompletedProcess[str]] = []

    def ran() -> bool:
        seen.append(running.cli("status"))
        return seen[-1].returncode == code and says in seen[-1].stdout

    try:
        took = wait_until(ran, timeout, 0.5, f"tickfleet status exit {code}")
    except AssertionError:
        raise AssertionError(seen[-1].stdout + seen[-1].stderr) from None
    print(f"status exit {code} after {took:.1f}s, {len(seen)} runs")
    return seen[-1].stdout


def test_status_shows_a_healthy_fleet_then_a_stopped_stream_as_a_problem(
    running: Running,
) -> None:
    expiry, strikes, calls = running.selection(3)
    done = running.cli("subscribe", "NIFTY", expiry, strikes, "CE")
    assert done.returncode == 0, done.stderr
    assert len(re.findall(r"^subscribed \d+", done.stdout, re.M)) == len(calls) == 3

    # ok allows a subscription still pending within its grace: wait for all three too
    healthy = _until_status(running, 0, 30, "3 active, 3 streaming, 0 not")
    assert "fleet healthy" in healthy
    assert "problem:" not in healthy

    chain = running.cli("chain", "--once", "--expiry", expiry)
    assert chain.returncode == 0, chain.stderr
    assert f"expiry {expiry}" in chain.stdout
    for call in calls:
        row = next(line for line in chain.stdout.splitlines() if f" {call.strike:g} " in line)
        assert re.search(r"\d+\.\d\d", row.split(f" {call.strike:g} ")[0]), row  # call's price

    redrawn = _watch_chain(running, expiry, seconds=3)
    assert redrawn.count(f"expiry {expiry}") >= 3, redrawn[-2000:]  # redrawn, not printed once

    running.stream.kill()
    broken = _until_status(running, 1, 30, "problem: stream account:sim-1: ")
    print(healthy, chain.stdout, broken, sep="\n")
    assert "fleet degraded" in broken


def _watch_chain(running: Running, expiry: str, seconds: float) -> str:
    """``tickfleet chain`` on a terminal (forced) for a while, then Ctrl-C; its output."""
    env = {**os.environ, **running.fleet.env, "TTY_COMPATIBLE": "1", "COLUMNS": "160"}
    argv = [str(BIN / "tickfleet"), "chain", "--expiry", expiry, "--every", "0.3"]
    with subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as chain:
        try:
            time.sleep(seconds)
            chain.send_signal(signal.SIGINT)
            out, _ = chain.communicate(timeout=15)
        finally:
            chain.kill()
    assert chain.returncode == 0
    return out


def test_unsubscribe_by_contract_and_by_token(running: Running) -> None:
    expiry, strikes, calls = running.selection(2)
    assert running.cli("subscribe", "NIFTY", expiry, strikes).returncode == 0  # CE and PE
    gone = running.cli("unsubscribe", "NIFTY", expiry, strikes, "CE")
    assert gone.returncode == 0, gone.stderr
    assert sorted(re.findall(r"^unsubscribed (\d+)", gone.stdout, re.M)) == sorted(
        str(c.instrument_token) for c in calls
    )
    with httpx.Client(base_url=running.url, timeout=10) as api:
        active = api.get("/subscriptions", params={"status": "active"}).json()
    puts = [s["instrument_token"] for s in active]
    assert len(puts) == 2
    assert all(s["tradingsymbol"].endswith("PE") for s in active)
    assert running.cli("unsubscribe", *map(str, puts)).returncode == 0
    missing = running.cli("unsubscribe", str(puts[0]))
    assert missing.returncode == 1
    assert "was not subscribed" in missing.stderr
    unknown = running.cli("unsubscribe", "7")
    assert unknown.returncode == 1
    assert "404" in unknown.stderr
