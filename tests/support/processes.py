"""Fleet processes started by tests: each in its own process group, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.support.zygote import Zygote, ZygoteChild, forks

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


_zygote: list[Zygote] = []


def zygote() -> Zygote:
    """This test process's zygote, started on first use (unit tests never need it)."""
    if not _zygote:
        _zygote.append(Zygote())
    return _zygote[0]


def stop_zygote() -> None:
    """Stop the zygote, if one was started; its children were stopped by their tests."""
    while _zygote:
        _zygote.pop().stop()


class FleetProcess:
    """One child process (celery worker, beat, uvicorn) with its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], logdir: Path):
        self.name = name
        self.argv = list(argv)
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self._log_start = self._log.tell()  # a process restarted under a name appends
        environment = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | ZygoteChild
        if forks(self.argv):
            self.proc = zygote().spawn(self.argv, environment, ROOT, self.log_path)
        else:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=environment,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._terminated = False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 30.0) -> None:
        """Wait until this process (not an earlier one of the same name) logs ``needle``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self._own_log():
                return
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        raise TimeoutError(
            f"{self.name}: {needle!r} not logged in {timeout}s:\n{self.log()[-4000:]}"
        )

    def _own_log(self) -> str:
        self._log.flush()
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group: the machine-died case."""
        self._signal_group(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> None:
        """Begin a warm shutdown (SIGTERM to the group) without waiting for it."""
        if self.alive() and not self._terminated:
            self._terminated = True
            self._signal_group(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL for whatever is left in the group."""
        self.terminate()
        if self.alive():
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=timeout)
        self._signal_group(signal.SIGKILL)
        if self.alive():
            self.proc.wait(timeout=10)
        self._log.close()

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)


def celery_worker_argv(
    app: str, name: str, queues: str, concurrency: int = 1, *extra: str
) -> list[str]:
    return [
        str(BIN / "celery"),
        "-A",
        app,
        "worker",
        "-Q",
        queues,
        "-n",
        f"{name}@%h",
        "-c",
        str(concurrency),
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        *extra,
    ]


def stream_worker_argv(app: str, name: str, concurrency: int = 3) -> list[str]:
    return celery_worker_argv(
        app, name, "stream", concurrency, "--prefetch-multiplier=1", "--disable-prefetch"
    )


def run_command(
    argv: Sequence[str],
    env: Mapping[str, str],
    timeout: float,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run(argv, capture_output=True)``, forked from the zygote where it can
    be: the ``tickfleet`` command exactly as an operator runs it, without its imports."""
    if not forks(argv):
        return subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, timeout=timeout, check=False
        )
    with tempfile.TemporaryDirectory(prefix="tickfleet-run-") as scratch:
        out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
        child = zygote().spawn(argv, env, cwd, out, err)
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
            raise subprocess.TimeoutExpired(list(argv), timeout, out.read_bytes()) from None
        return subprocess.CompletedProcess(list(argv), code, out.read_bytes(), err.read_bytes())


def run_text(
    argv: Sequence[str], env: Mapping[str, str], timeout: float, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """``run_command`` with its output decoded, as ``subprocess.run(..., text=True)``."""
    done = run_command(argv, env, timeout, cwd)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )
