"""Serial tests run without other fleets: first, one at a time, while every test that
starts processes waits.

Under pytest-xdist, tests share the machine's two cores. A few measure a timing that a
loaded machine stretches (a stream's handover within the lease TTL, a rate limiter's
50 ms): marked ``serial``, they are collected first, so every worker is handed its serial
tests before any other; a lock lets one run at a time, and every test that starts
processes waits, before its set-up, until the last serial one has finished. Tests that
start none (unit tests, and integration tests against the session's redis-server) run
beside them: about a core's worth of plain Python work, which the failover timings were
measured against (two and six busy processes, ``docs/architecture/flows.md``). The
session's workers share a directory for this: the lock file, and one file per finished
serial test.
"""

from __future__ import annotations

import fcntl
import hashlib
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SERIAL_MARK = "serial"
WAIT_AT_MOST_SECONDS = 900.0  # then run anyway: a lost worker must not hang the session


class SerialGate:
    """What the session's workers tell each other about its serial tests."""

    def __init__(self, directory: Path, serial_tests: int) -> None:
        self.directory = directory
        self.serial_tests = serial_tests
        self._open = serial_tests == 0
        directory.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def alone(self, nodeid: str) -> Iterator[None]:
        """Run one serial test: after any other serial test, and recorded as finished."""
        with (self.directory / "lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                name = hashlib.sha1(nodeid.encode()).hexdigest()
                (self.directory / f"{name}.done").touch()
                fcntl.flock(lock, fcntl.LOCK_UN)

    def wait(self, every: float = 0.2) -> None:
        """Return once every serial test of the session has finished."""
        deadline = time.monotonic() + WAIT_AT_MOST_SECONDS
        while not self._open and time.monotonic() < deadline:
            self._open = self._finished() >= self.serial_tests
            if not self._open:
                time.sleep(every)
        if not self._open:
            warnings.warn(
                f"{self._finished()} of {self.serial_tests} serial tests finished "
                f"after {WAIT_AT_MOST_SECONDS:g}s: running on",
                stacklevel=2,
            )
            self._open = True

    def _finished(self) -> int:
        return sum(1 for _ in self.directory.glob("*.done"))
