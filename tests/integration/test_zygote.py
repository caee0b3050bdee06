"""A program forked from the tests' warm interpreter is the program an exec starts: the
same output and exit status, its own session, its environment and directory, and the
signals tests send it act as they would on an exec'd one. (One difference stays:
``/proc/<pid>/environ`` shows the zygote's environment, as it does for any process that
changed its own after it started.)"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support.ports import free_port, wait_for_port
from tests.support.processes import BIN, ROOT, FleetProcess, run_command
from tests.support.seed import init_database
from tests.support.zygote import forks
from tickfleet.config.settings import Settings

pytestmark = [pytest.mark.timeout(60), pytest.mark.processes]

COMMANDS = [
    ["--help"],
    ["no-such-command"],
    ["status", "--api", "http://127.0.0.1:9"],
    ["ticks", "stats", "--date", "not-a-date"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_forked_command_says_and_exits_as_an_execed_one(
    args: list[str], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    argv = [str(BIN / "tickfleet"), *args]
    if not forks(argv):
        pytest.skip("TEST_ZYGOTE=off: nothing is forked to compare")
    env = {**os.environ, **make_settings().to_env(), "COLUMNS": "100"}
    execed = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=30, check=False)
    forked = run_command(argv, env, timeout=30)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        execed.returncode,
        execed.stdout,
        execed.stderr,
    )
    assert args == ["--help"] or execed.returncode != 0  # the failing ones did fail


def test_a_forked_server_has_its_session_environment_and_directory_and_obeys_signals(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    init_database(settings)
    port = free_port()
    argv = [str(BIN / "uvicorn"), "producers.api:app", "--host", "127.0.0.1", "--port", str(port)]
    env = settings.to_env()  # its database and Redis: it would not start on the defaults
    api = FleetProcess("api", argv, env, tmp_path)
    try:
        wait_for_port(port, timeout=30)
        assert httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).status_code == 200
        assert os.getsid(api.pid) == api.pid and os.getpgid(api.pid) == api.pid
        assert Path(f"/proc/{api.pid}/cwd").resolve() == ROOT
        api.stop()  # SIGTERM: uvicorn shuts down, then ends by the signal it caught
        said = api.log_path.read_text()
        assert api.proc.returncode == -signal.SIGTERM, said
        assert "Shutting down" in said
    finally:
        api.stop()

    again = FleetProcess("api-again", argv, env, tmp_path)
    try:
        wait_for_port(port, timeout=30)
        again.kill()
        assert again.proc.returncode == -signal.SIGKILL
    finally:
        again.stop()
