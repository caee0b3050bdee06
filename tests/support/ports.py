"""Free loopback ports for servers the tests start.

A port found by binding port 0 is free only until its socket closes: the server the test
starts binds it a moment later, and with several pytest-xdist workers another worker's
``bind(0)`` or any ``connect()`` can take it in between. So each worker hands out ports
from a block of its own below the kernel's ephemeral range (32768-60999 by default, which
``bind(0)`` and ``connect()`` draw from), each once per session in turn, after checking
that nothing has it bound now (another pytest session, a machine service).
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import time
from collections.abc import Iterator
from functools import lru_cache

PORTS_FROM = 20000
BLOCK_SIZE = 500
BLOCKS = 25  # 20000-32499: the session without xdist, then gw0 ... gw23


def worker_block(worker: str | None) -> range:
    """The ports of the xdist worker named ``worker`` ("gw3"); block 0 without xdist."""
    index = int(worker[2:]) + 1 if worker and worker.startswith("gw") else 0
    start = PORTS_FROM + (index % BLOCKS) * BLOCK_SIZE
    return range(start, start + BLOCK_SIZE)


@lru_cache(maxsize=1)
def _candidates() -> Iterator[int]:
    """This process's block, in turn from a random place: two pytest sessions on one
    machine rarely offer the same port at the same time."""
    block = worker_block(os.environ.get("PYTEST_XDIST_WORKER"))
    first = random.randrange(len(block))
    return itertools.cycle([*block[first:], *block[:first]])


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback port nothing listens on, never handed out twice by this worker
    (until its block of 500 wraps around) nor ever by another worker of this session."""
    for port in itertools.islice(_candidates(), BLOCK_SIZE):
        if bindable(port):
            return port
    raise RuntimeError("every port of this worker's block is taken")


def wait_for_port(port: int, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
