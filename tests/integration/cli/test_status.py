"""``tickfleet status``, ``subscribe``, ``unsubscribe`` and ``chain`` as an operator runs
them: real subprocesses against a real fleet (API, control worker, one stream worker,
beat) in simulated mode, with an API key that the command line must send. The redrawing
commands (``chain``, ``status --watch``) run on a forced terminal and end with Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.ports import wait_for_port
from tests.support.processes import BIN, ROOT, FleetProcess, run_text
from tests.support.seed import seed_universe
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument

pytestmark = pytest.mark.timeout(120)
API_KEY = "cli-status-test-key-0123456789"


@dataclass
class Running:
    fleet: Fleet
    url: str
    api: FleetProcess
    stream: FleetProcess
    options: list[Instrument]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        api = ["--api", self.url] if args[0] in ("status", "subscribe", "unsubscribe") else []
        return run_text(
            [str(BIN / "tickfleet"), *args, *api],
            env={**os.environ, **self.fleet.env, "COLUMNS": "160"},
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
        **FAST_FLEET,
        stream_start_grace_seconds=4.0,
        stream_stale_seconds=5.0,
    )
    options = seed_universe(settings, with_expired=False)
    fleet = fleet_factory(settings)
    with fleet.starting():
        api, url = fleet.api()
        fleet.control_worker()
        stream = fleet.stream_worker()  # the only one: once it dies, nothing takes its streams
        fleet.beat()
    yield Running(fleet, url, api, stream, options)


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

    with Screen(running, "chain", "--expiry", expiry, "--every", "0.3") as watched_chain:
        for _ in range(3):  # redrawn, not printed once
            watched_chain.wait_for(f"expiry {expiry}", 15)

    with Screen(running, "status", "--watch", "--every", "0.3", "--api", running.url) as watch:
        watch.wait_for("fleet healthy", 15)
        running.stream.kill()
        watch.wait_for("problem: stream account:sim-1: ", 30)
        broken = _until_status(running, 1, 30, "problem: stream account:sim-1: ")
        _restart_api(running, watch)
    print(healthy, chain.stdout, broken, watch.text()[-3000:], sep="\n")
    assert "fleet degraded" in broken


def _restart_api(running: Running, watch: Screen) -> None:
    """The API stops and comes back on its port: the watch says so and keeps redrawing."""
    running.api.stop()
    watch.wait_for("problem: API unreachable: ", 15)
    watch.wait_for("fleet unknown", 5)  # redrawn while unreachable, not stopped at it
    again = FleetProcess("api-again", running.api.argv, running.fleet.env, running.fleet.logdir)
    running.fleet.processes.append(again)
    wait_for_port(int(running.url.rsplit(":", 1)[1]), timeout=30)
    watch.wait_for("fleet degraded", 30)  # answering again: the dead stream, not the API


# As from a terminal: a suite started in the background (a non-interactive shell's `&`)
# ignores SIGINT, a child inherits that, and Python installs its Ctrl-C handler only where
# SIGINT is not ignored. The command is exec'd with SIGINT back to its default.
WITH_CTRL_C = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


class Screen:
    """A redrawing ``tickfleet`` command on a terminal (forced), its output read as it
    comes; leaving the block presses Ctrl-C, which must end it with exit 0 and no error."""

    def __init__(self, running: Running, *args: str) -> None:
        env = {
            **os.environ,
            **running.fleet.env,
            "TTY_COMPATIBLE": "1",
            "PYTHONFAULTHANDLER": "1",
            "COLUMNS": "160",
        }
        self._proc = subprocess.Popen(
            [str(BIN / "python"), "-c", WITH_CTRL_C, str(BIN / "tickfleet"), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._seen = 0  # where the last awaited text ended: each wait looks after it

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.append(line)

    def text(self) -> str:
        """The output so far, without terminal codes (colours, cursor moves)."""
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", "".join(self._lines))

    def wait_for(self, says: str, timeout: float) -> None:
        """Until ``says`` appears after what the previous wait found."""
        try:
            took = wait_until(lambda: says in self.text()[self._seen :], timeout, 0.1, repr(says))
        except AssertionError:
            raise AssertionError(f"{says!r} not shown:\n{self.text()[-3000:]}") from None
        self._seen += self.text()[self._seen :].index(says) + len(says)
        print(f"shown {says!r} after {took:.1f}s")

    def __enter__(self) -> Screen:
        return self

    def _dump_where_it_hangs(self) -> None:
        """A command that outlives its Ctrl-C shows every thread's stack (faulthandler, on
        SIGABRT) in the test's output, so the hang can be found from one failed run."""
        assert self._proc.stderr is not None
        self._proc.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=5)
        print("still running 15 s after Ctrl-C; its stacks:", self._proc.stderr.read()[-8000:])

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stderr is not None
        try:
            self._proc.send_signal(signal.SIGINT)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._dump_where_it_hangs()
                raise
            self._reader.join(timeout=5)
            err = self._proc.stderr.read()
        finally:
            self._proc.kill()
            self._proc.wait()
            for pipe in (self._proc.stdout, self._proc.stderr):
                if pipe is not None:
                    pipe.close()
        if exc[0] is None:
            assert self._proc.returncode == 0, err
            assert "Traceback" not in err, err


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
