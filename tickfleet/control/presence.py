"""Which stream workers are there to run streams, as the workers announce themselves.

A stream task only runs where a worker consumes the stream queue and has a free pool
slot; a start enqueued where neither exists waits for nobody. Every stream worker keeps
a record of itself in Redis from its main process (a Celery bootstep): when it starts,
a heartbeat every ``HEARTBEAT_SECONDS``, and when it stops (a signal or a remote
shutdown alike). A worker whose heartbeat stopped (frozen, SIGSTOPped, its host gone) is
``silent`` after ``SILENT_AFTER_SECONDS``; one that stopped is ``left``. Both are named in
``/health`` for ``REMEMBER_SECONDS``, then forgotten. The watchdog starts streams only
where a live worker has room, so starts never pile up in a queue nobody reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import orjson
import redis

from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import standby_host

HEARTBEAT_SECONDS = 2.0
SILENT_AFTER_SECONDS = 10.0
REMEMBER_SECONDS = 600.0

WorkerState = Literal["live", "silent", "left"]


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """What one stream worker said of itself last."""

    hostname: str
    pid: int
    concurrency: int
    started_at: float
    seen_at: float
    left_at: float | None = None
    reason: str | None = None  # why it left

    def state(self, now: float) -> WorkerState:
        if self.left_at is not None:
            return "left"
        return "silent" if now - self.seen_at > SILENT_AFTER_SECONDS else "live"

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> WorkerRecord:
        data: dict[str, Any] = orjson.loads(raw)
        return cls(**data)


class Presence:
    """The stream workers' records in one Redis hash, hostname → record."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._key = keys.stream_workers

    def announce(self, record: WorkerRecord) -> None:
        self._client.hset(self._key, record.hostname, record.to_json())

    def beat(self, record: WorkerRecord, now: float) -> WorkerRecord:
        beaten = replace(record, seen_at=now)
        self.announce(beaten)
        return beaten

    def leave(self, record: WorkerRecord, now: float, reason: str) -> None:
        self.announce(replace(record, seen_at=now, left_at=now, reason=reason))

    def read(self, now: float) -> list[WorkerRecord]:
        """Every worker heard of within ``REMEMBER_SECONDS``; older records are dropped."""
        records = [WorkerRecord.from_json(v) for v in self._client.hvals(self._key)]
        stale = [r.hostname for r in records if now - r.seen_at > REMEMBER_SECONDS]
        if stale:
            self._client.hdel(self._key, *stale)
        return sorted((r for r in records if r.hostname not in stale), key=lambda r: r.hostname)


@dataclass(frozen=True, slots=True)
class Capacity:
    """Room for streams on the live workers: pool slots less the streams they run."""

    live: tuple[str, ...]
    free_slots: int
    gone: tuple[WorkerRecord, ...]  # silent or left, still remembered
    workers: tuple[WorkerRecord, ...] = ()  # every record read, live and gone
    free_by_host: tuple[tuple[str, int], ...] = ()  # each live worker's own free slots

    def roomiest_besides(self, hostname: str | None) -> str | None:
        """The live worker other than ``hostname`` with the most free slots (for a
        standby), if any has one."""
        free, host = max(((n, h) for h, n in self.free_by_host if h != hostname), default=(0, ""))
        return host if free > 0 and self.free_slots > 0 else None

    def problem(self, missing: int) -> str | None:
        """Why ``missing`` streams cannot start, if they cannot."""
        if missing <= 0:
            return None
        if not self.live:
            return f"no live worker consumes the stream queue: {missing} streams cannot start"
        if self.free_slots <= 0:
            return (
                f"every stream worker's pool is full ({', '.join(self.live)}): {missing} "
                "streams wait for a slot (raise the stream worker's concurrency or add one)"
            )
        return None

    def warnings(self, now: float) -> list[str]:
        return [_gone(record, now) for record in self.gone]


def capacity(records: Iterable[WorkerRecord], running: Mapping[str, int], now: float) -> Capacity:
    """``running``: streams each worker (by hostname) holds now, or stands by for."""
    records = list(records)
    live = [r for r in records if r.state(now) == "live"]
    by_host = tuple((r.hostname, max(0, r.concurrency - running.get(r.hostname, 0))) for r in live)
    free = sum(n for _, n in by_host)
    gone = tuple(r for r in records if r.state(now) != "live")
    return Capacity(tuple(r.hostname for r in live), free, gone, tuple(records), by_host)


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a stream runs now: its owner's worker and its standby's, when known."""

    owner_host: str | None
    standby_host: str | None
    starting: bool


def placements(client: redis.Redis, keys: Keys, names: Iterable[str]) -> dict[str, Placement]:
    """Each stream's owner and standby workers, read in one round trip.

    The owner's worker is known once its status names the lease holder as its owner.
    """
    names = sorted(names)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(keys.stream_lease(name))
        pipe.hmget(keys.stream_status(name), ["owner", "hostname"])
        pipe.get(keys.stream_standby(name))
        pipe.exists(keys.stream_starting(name))
    replies = pipe.execute()
    out = {}
    for name, (lease, (owner, host), standby, pending) in zip(
        names, zip(*[iter(replies)] * 4, strict=True), strict=True
    ):
        held_here = lease is not None and host is not None and lease == owner
        out[name] = Placement(
            _text(host) if held_here else None, standby_host(standby), bool(pending)
        )
    return out


def fleet_capacity(client: redis.Redis, keys: Keys, now: float) -> Capacity:
    """The fleet's room for streams now: its live workers' slots, less the streams that
    hold a lease or stand by there and the starts already on their way."""
    names = [_text(n) for n in client.smembers(keys.streams_known)]
    running: Counter[str] = Counter()
    starting = 0
    for placed in placements(client, keys, names).values():
        for host in (placed.owner_host, placed.standby_host):
            if host is not None:
                running[host] += 1
        starting += placed.starting
    room = capacity(Presence(client, keys).read(now), running, now)
    return replace(room, free_slots=max(0, room.free_slots - starting))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _gone(record: WorkerRecord, now: float) -> str:
    if record.left_at is not None:
        return (
            f"stream worker {record.hostname} stopped {now - record.left_at:.0f}s ago "
            f"({record.reason}); its streams move to the others"
        )
    return (
        f"stream worker {record.hostname} has been silent for {now - record.seen_at:.0f}s "
        "(frozen or gone); its streams move to the others once their leases lapse"
    )
