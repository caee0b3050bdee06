"""Fleet processes forked from one warm interpreter instead of each importing the world.

A Celery worker, beat or uvicorn spends about two CPU seconds importing Celery, kombu,
redis-py, SQLAlchemy, FastAPI and tickfleet before it does anything; the suite starts
hundreds of them, and on two cores those imports were a third of its CPU. The zygote is a
process that imports them once and forks a child per request. The child is what
``celery …`` or ``uvicorn …`` would have been: the same entry point with the same argv,
environment, working directory and log file, in a session of its own (so tests signal
its process group as before), with the signal dispositions a shell gives a new program.
What differs is only that the imports were done before the fork, which is what Celery's
prefork pool does for its own children, and that nothing at import time reads settings.

The test side (``ZygoteChild``) has the part of ``subprocess.Popen`` that ``FleetProcess``
uses. The child is the zygote's, not the test's, so the test watches it through a pidfd,
and the zygote writes each child's exit status to ``<log>.exit`` when it reaps it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypedDict

# What the suite's fleet processes import, before any test asks for one.
WARM = (
    "celery.__main__",
    "celery.bin.celery",
    "celery.apps.worker",
    "celery.apps.beat",
    "celery.worker.consumer",
    "celery.concurrency.prefork",
    "celery.backends.redis",
    "kombu.transport.redis",
    "redbeat",
    "uvicorn.main",
    "workers",
    "producers.api",
    "producers.cli",
)


def _celery() -> None:
    from celery.__main__ import main  # noqa: PLC0415 (warm already: a dict lookup)

    main()


def _tickfleet() -> None:
    from producers.cli import main  # noqa: PLC0415

    sys.exit(main())


def _uvicorn() -> None:
    from uvicorn.main import main  # noqa: PLC0415

    main()


PROGRAMS: Mapping[str, Callable[[], None]] = {
    "celery": _celery,
    "tickfleet": _tickfleet,
    "uvicorn": _uvicorn,
}


def forks(argv: Sequence[str]) -> bool:
    """Whether the zygote starts this command line (else: a plain subprocess, as always
    with ``TEST_ZYGOTE=off``)."""
    if os.environ.get("TEST_ZYGOTE") == "off":
        return False
    return Path(argv[0]).name in PROGRAMS and Path(argv[0]).parent == Path(sys.executable).parent


# --- the zygote process ---------------------------------------------------------------------


class Request(TypedDict):
    """One program to start: its command line, environment, directory and output files."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    log: str
    errors: str


def _child(request: Request) -> None:
    """In the forked child: become the program the request names; never returns."""
    code = 1
    try:
        os.setsid()
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, path in ((1, request["log"]), (2, request["errors"])):
            out = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(out, fd)
            os.close(out)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        PROGRAMS[Path(sys.argv[0]).name]()
        code = 0
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except BaseException:
        import traceback  # noqa: PLC0415

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _exit_code(code: object) -> int:
    """The status Python exits with for ``sys.exit(code)``, printing a message as it does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _reap(children: dict[int, str]) -> None:
    while children:
        try:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        log = children.pop(pid, None)
        if log is not None:
            code = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            Path(f"{log}.exit.tmp").write_text(f"{code} {cpu:.3f}")
            os.replace(f"{log}.exit.tmp", f"{log}.exit")


def serve(path: str) -> None:
    """Import the warm modules, then fork a child per request until stdin closes."""
    for name in WARM:
        importlib.import_module(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    print("ready", flush=True)
    children: dict[int, str] = {}
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [], 0.05)
        _reap(children)
        if sys.stdin in readable and not sys.stdin.readline():
            return  # the test session ended: its children were stopped by their tests
        if listener in readable:
            conn, _ = listener.accept()
            with conn, conn.makefile("rwb") as stream:
                request: Request = json.loads(stream.readline())
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    stream.close()
                    conn.close()
                    _child(request)
                children[pid] = str(request["log"])
                stream.write(f"{pid}\n".encode())
                stream.flush()


# --- the test side --------------------------------------------------------------------------

# CPU seconds of this test process's zygote children that have exited (tests.support.cpu_report
# adds it to the CPU of the processes the test reaped itself).
REAPED_CPU = [0.0]


class ZygoteChild:
    """A forked fleet process, seen as much like a ``subprocess.Popen`` as tests need."""

    def __init__(self, pid: int, log: Path) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exit = Path(f"{log}.exit")
        self._pidfd: int | None = None
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:  # gone already, and reaped by the zygote
            self._collect()

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def poll(self) -> int | None:
        if self._pidfd is not None and select.select([self._pidfd], [], [], 0)[0]:
            self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self._pidfd is not None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0.0)
            self._collect()
        assert self.returncode is not None
        return self.returncode

    def _collect(self) -> None:
        """The child has exited; its status is in the file the zygote writes on reaping."""
        deadline = time.monotonic() + 10
        while not self._exit.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        code, cpu = self._exit.read_text().split() if self._exit.exists() else ("-1", "0")
        self.returncode = int(code)
        REAPED_CPU[0] += float(cpu)
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


class Zygote:
    """The warm interpreter of one test process: started on first use, stopped with it."""

    def __init__(self) -> None:
        self._dir = tempfile.mkdtemp(prefix="tickfleet-zygote-")
        self._path = str(Path(self._dir) / "zygote.sock")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.zygote", self._path],
            cwd=Path(__file__).resolve().parents[2],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the zygote exited with {self._proc.wait(10)}")

    def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        log: Path,
        errors: Path | None = None,
    ) -> ZygoteChild:
        """Start ``argv`` with its standard output in ``log`` and its standard error in
        ``errors`` (the same file unless given)."""
        request: Request = {
            "argv": list(argv),
            "env": dict(env),
            "cwd": str(cwd),
            "log": str(log),
            "errors": str(errors or log),
        }
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.connect(self._path)
            conn.sendall(json.dumps(request).encode() + b"\n")
            with conn.makefile("rb") as stream:
                pid = int(stream.readline())
        return ZygoteChild(pid, log)

    def stop(self) -> None:
        assert self._proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)


if __name__ == "__main__":
    serve(sys.argv[1])
