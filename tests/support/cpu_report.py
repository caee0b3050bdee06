"""Where the suite's CPU goes: each test's CPU seconds, its own and its processes'.

The suite on two cores is bound by CPU, not by waits, so its wall time falls only with
the CPU its tests spend. Load with ``-p tests.support.cpu_report`` and name a file in
``TEST_CPU_REPORT``: every test appends ``<cpu s> <wall s> <nodeid>``, the CPU being
this process's and that of the children it reaped meanwhile (the fleet processes a test
starts and stops, and theirs). ``python -m tests.support.cpu_report FILE`` ranks them.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.zygote import REAPED_CPU


def _cpu() -> float:
    total = REAPED_CPU[0]
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    report = os.environ.get("TEST_CPU_REPORT")
    cpu, wall = _cpu(), time.monotonic()
    yield
    if report:
        with Path(report).open("a") as sink:
            sink.write(f"{_cpu() - cpu:.2f} {time.monotonic() - wall:.2f} {item.nodeid}\n")


def _rank(path: Path, top: int = 30) -> None:
    rows = [line.split(" ", 2) for line in path.read_text().splitlines()]
    total = sum(float(cpu) for cpu, _, _ in rows)
    print(f"{len(rows)} tests, {total:.0f} CPU s in all")
    for cpu, wall, nodeid in sorted(rows, key=lambda r: -float(r[0]))[:top]:
        print(f"{float(cpu):7.1f} {float(wall):7.1f}  {nodeid}")


if __name__ == "__main__":
    _rank(Path(sys.argv[1]))
