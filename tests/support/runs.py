"""Reading the reload runs recorded by tests.support.instrumented_workers."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import redis

# Written by tests.support.instrumented_workers inside worker processes. This module must
# not import that one: importing it patches the reload body and the publisher.
RUNS_KEY = "test:reload:runs"
PUBLISHES_KEY = "test:publishes"


def as_text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


@dataclass(frozen=True)
class Run:
    run: str
    start: float
    end: float | None


def reload_runs(client: redis.Redis) -> list[Run]:
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for raw in client.lrange(RUNS_KEY, 0, -1):
        kind, run, at = as_text(raw).split()
        (starts if kind == "start" else ends)[run] = float(at)
    return sorted((Run(r, s, ends.get(r)) for r, s in starts.items()), key=lambda r: r.start)


def assert_no_overlap(runs: list[Run]) -> None:
    for before, after in pairwise(runs):
        assert before.end is not None and before.end <= after.start, f"{before} overlaps {after}"


@dataclass(frozen=True)
class Publish:
    stream: str
    pid: int
    at: float
    ticks: int


def publishes(client: redis.Redis) -> list[Publish]:
    out = []
    for raw in client.lrange(PUBLISHES_KEY, 0, -1):
        stream, pid, at, n = as_text(raw).split()
        out.append(Publish(stream, int(pid), float(at), int(n)))
    return out
