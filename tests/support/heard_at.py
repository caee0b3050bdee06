"""When ticks were heard, by a subscriber in a process of its own.

A test's in-process collectors share its interpreter with its own polling and with the
collector of a shard that is down (reconnecting); timings taken there measured stalls of
the test process (1.6 s while a separate subscriber heard every 0.3 s tick). Whether a
channel ever stopped is measured here instead: one process, one node, one subscription,
nothing else to do than write down when each message came.

Run as ``python -m tests.support.heard_at PORT OUT CHANNEL...``: it SSUBSCRIBEs on the
node at ``PORT`` (the channels must live there) and appends ``<epoch seconds> <channel>``
to ``OUT`` for every message, until killed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import redis

from tests.support.processes import ROOT


class HeardAt:
    """The times a listener process heard each of its channels' messages."""

    def __init__(self, out: Path) -> None:
        self._out = out

    def times(self, channel: str) -> list[float]:
        lines = self._out.read_text().splitlines() if self._out.exists() else []
        return [float(at) for at, name in (line.split(" ", 1) for line in lines) if name == channel]

    def largest_gap(self, channel: str, start: float, end: float) -> float | None:
        """The longest silence on ``channel`` between its last message before ``start`` and
        its first after ``end``; None until both exist."""
        times = self.times(channel)
        before = [t for t in times if t <= start]
        after = [t for t in times if t >= end]
        if not before or not after:
            return None
        span = [max(before), *[t for t in times if start < t < end], min(after)]
        return max(b - a for a, b in pairwise(span))


@contextmanager
def heard_at(port: int, channels: Sequence[str], out: Path) -> Iterator[HeardAt]:
    """A listener process on the node at ``port`` for ``channels``, subscribed on entry
    (its first message heard) and killed on leaving."""
    argv = [sys.executable, "-m", "tests.support.heard_at", str(port), str(out), *channels]
    proc = subprocess.Popen(argv, cwd=ROOT)
    try:
        heard = HeardAt(out)
        deadline = time.monotonic() + 15
        while not any(heard.times(c) for c in channels):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the listener on {port} heard nothing of {channels}")
            time.sleep(0.05)
        yield heard
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _listen(port: int, out: Path, channels: Sequence[str]) -> None:
    client = redis.Redis(port=port, socket_timeout=5)
    pubsub = client.pubsub()
    pubsub.ssubscribe(*channels)
    with out.open("a") as sink:
        while True:
            message = pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                sink.write(f"{time.time():.4f} {message['channel'].decode()}\n")
                sink.flush()


if __name__ == "__main__":
    _listen(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
