"""``make run``'s fleet under supervisord: a program killed with SIGKILL comes back on its
own, and the restart is logged, while the other four keep running untouched.

The fleet's runner before supervisord stopped every process when one died, and restarted
none. The fleet here starts as ``make run`` starts it (scripts/run-fleet.sh: the exposure check,
init-db, then supervisord.conf), on this test's Redis, SQLite file, ports, run directory
and clock.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import xmlrpc.client
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from supervisor.xmlrpc import SupervisorTransport

from tests.support.polling import wait_until
from tests.support.ports import free_port, wait_for_port
from tests.support.processes import BIN, ROOT
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(240)

PROGRAMS = ("stream", "control", "beat", "api", "flower")
START_BOUND = 90.0  # init-db, then every program up for its startsecs (5 s at most)
RESTART_BOUND = 30.0  # SIGKILL to RUNNING again: a spawn and startsecs, with slack
ORPHAN_BOUND = 15.0  # a killed worker's pool processes notice their parent is gone


@dataclass(frozen=True)
class Proc:
    """A live process's ids, as /proc/<pid>/stat reads them."""

    pid: int
    pgid: int
    sid: int


def live_processes() -> list[Proc]:
    """Every process on this machine that has not exited (zombies left out)."""
    found: list[Proc] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgid, sid = stat[stat.rfind(")") + 2 :].split()[:4]
        if state != "Z":
            found.append(Proc(int(entry), int(pgid), int(sid)))
    return found


class SupervisedFleet:
    """scripts/run-fleet.sh in a session of its own, so every process it leads to (every
    program, every worker's pool process, an orphan) is found, and ended, by session id."""

    def __init__(self, env: dict[str, str], run_dir: Path) -> None:
        self.env = env
        self.run_dir = run_dir
        self._output = (run_dir / "run-fleet.out").open("ab")
        self.proc = subprocess.Popen(
            [str(ROOT / "scripts" / "run-fleet.sh")],
            cwd=ROOT,
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def states(self) -> dict[str, tuple[str, int]]:
        """Each program's state and main pid, over supervisord's socket; {} until it answers."""
        if self.proc.poll() is not None:
            output = (self.run_dir / "run-fleet.out").read_text()
            raise AssertionError(f"run-fleet.sh exited {self.proc.returncode}:\n{output}")
        socket = f"unix://{self.run_dir / 'supervisor.sock'}"
        proxy = xmlrpc.client.ServerProxy(
            "http://127.0.0.1", transport=SupervisorTransport(None, None, socket)
        )
        try:
            infos = cast(list[dict[str, Any]], proxy.supervisor.getAllProcessInfo())
        except (OSError, xmlrpc.client.Fault):
            return {}
        return {info["name"]: (info["statename"], info["pid"]) for info in infos}

    def running(self) -> dict[str, int]:
        """The main pid of each RUNNING program."""
        return {name: pid for name, (state, pid) in self.states().items() if state == "RUNNING"}

    def log(self) -> str:
        return (self.run_dir / "log" / "supervisord.log").read_text()

    def members(self) -> list[Proc]:
        return [p for p in live_processes() if p.sid == self.proc.pid]

    def stop(self) -> int | None:
        """SIGTERM supervisord, which stops its programs (each within its stopwaitsecs),
        then SIGKILL whatever of the session is left; supervisord's exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=45)
        for leftover in self.members():
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self._output.close()
        return self.proc.returncode


@pytest.fixture
def start_fleet(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[Callable[..., SupervisedFleet]]:
    """Start the whole fleet as ``make run`` starts it, with any variable overridden;
    everything started is stopped on every path."""
    started: list[SupervisedFleet] = []

    def start(**overrides: str) -> SupervisedFleet:
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        settings = make_settings(feed="mock", api_port=free_port())
        env = {
            **os.environ,
            **settings.to_env(),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "TICKFLEET_RUN_DIR": str(run_dir),
            "FLOWER_ADDRESS": "127.0.0.1",
            "FLOWER_PORT": str(free_port()),
            "STREAM_CONCURRENCY": "2",
        }
        for secret in ("TICKFLEET_API_KEY", "FLOWER_BASIC_AUTH"):
            env.pop(secret, None)  # loopback only: neither door needs one
        started.append(SupervisedFleet({**env, **overrides}, run_dir))
        return started[-1]

    yield start
    for fleet in started:
        fleet.stop()


def kill_and_await_restart(fleet: SupervisedFleet, name: str, before: dict[str, int]) -> float:
    """SIGKILL ``name``'s main process; the seconds until it runs again under a new pid.
    At every look meanwhile, the other programs run with the pids they had."""
    killed = before[name]
    others = {other: ("RUNNING", pid) for other, pid in before.items() if other != name}
    os.kill(killed, signal.SIGKILL)

    def restarted() -> bool:
        states = fleet.states()
        if not states:
            return False
        moved = {n: states.get(n) for n, expected in others.items() if states.get(n) != expected}
        assert not moved, f"killing {name} disturbed {moved}"
        state, pid = states[name]
        return state == "RUNNING" and pid not in (0, killed)

    took = wait_until(restarted, RESTART_BOUND, every=0.1, what=f"{name} RUNNING again")
    wait_until(
        lambda: all(p.pgid != killed for p in live_processes()),
        ORPHAN_BOUND,
        every=0.2,
        what=f"every process of the killed {name} ended (no orphaned pool process)",
    )
    return took


def assert_doors_answer(fleet: SupervisedFleet, name: str) -> None:
    """The API answers /health, Flower its port, after their restart."""
    if name == "api":
        port = int(fleet.env["API_PORT"])
        wait_for_port(port, timeout=20)
        response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert response.status_code == 200, response.text
    elif name == "flower":
        wait_for_port(int(fleet.env["FLOWER_PORT"]), timeout=20)


def test_each_killed_program_is_restarted_and_logged_while_the_others_keep_running(
    start_fleet: Callable[..., SupervisedFleet],
) -> None:
    fleet = start_fleet()
    wait_until(
        lambda: len(fleet.running()) == len(PROGRAMS),
        START_BOUND,
        every=0.2,
        what="all five programs RUNNING",
    )
    status = subprocess.run(
        [str(ROOT / "scripts" / "fleetctl.sh"), "status"],
        env=fleet.env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert sorted(re.findall(r"^(\w+)\s+RUNNING", status.stdout, re.M)) == sorted(PROGRAMS)

    pids = fleet.running()
    took: dict[str, float] = {}
    for name in PROGRAMS:
        took[name] = kill_and_await_restart(fleet, name, pids)
        assert_doors_answer(fleet, name)
        pids = fleet.running()
    print("seconds from SIGKILL to RUNNING:", {n: round(t, 1) for n, t in took.items()})

    log = fleet.log()
    assert sorted(re.findall(r"exited: (\w+) \(terminated by SIGKILL", log)) == sorted(PROGRAMS)
    assert len(re.findall(r"exited: ", log)) == len(PROGRAMS), log  # nothing else stopped
    for name in PROGRAMS:
        assert log.count(f"spawned: '{name}'") == 2, log
        assert (fleet.run_dir / "log" / f"{name}.log").stat().st_size > 0

    assert fleet.stop() == 0
    assert fleet.members() == []


def test_an_open_api_beyond_loopback_is_refused_before_anything_starts(
    start_fleet: Callable[..., SupervisedFleet], sqlite_url: str
) -> None:
    fleet = start_fleet(API_HOST="0.0.0.0")  # and no TICKFLEET_API_KEY

    assert fleet.proc.wait(timeout=60) == 2
    output = (fleet.run_dir / "run-fleet.out").read_text()
    assert "refused: the API would listen on 0.0.0.0 (API_HOST)" in output
    assert not (fleet.run_dir / "supervisor.sock").exists()
    assert not Path(sqlite_url.removeprefix("sqlite:///")).exists()  # init-db never ran
