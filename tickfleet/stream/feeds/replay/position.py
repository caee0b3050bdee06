"""Where a replay stands: the last replayed tick of each underlying that reached consumers.

A new owner of the stream (its standby after a kill, a restart) resumes right after it.
The position is written by the publish script in the very call that publishes the ticks
before it (``TickPublisher.note``), so it never claims a tick that did not go out, and
never lags one that did: a takeover repeats none and skips only the ticks that were still
waiting to be sent when the old owner died.

A position belongs to one replay (its day and window) and stays true only while some
owner keeps writing it (every ``REFRESH_SECONDS``, ticks or not); one older than
``STALE_SECONDS`` is a replay that ended long ago, and the day is replayed from the start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from tickfleet.archive.replay_source import Key

REFRESH_SECONDS = 5.0
STALE_SECONDS = 60.0  # far above a takeover's lease TTL, far below a new day's replay


class Position(NamedTuple):
    """A replay's identity (``run``), its last tick's key, and when it was written."""

    run: str
    key: Key
    written_at: float

    def encode(self) -> bytes:
        ts_ns, stream, seq = self.key
        return f"{self.run}|{ts_ns}|{stream}|{seq}|{self.written_at:.3f}".encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> Position | None:
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            run, ts_ns, stream, seq, written_at = text.rsplit("|", 4)
            return cls(run, (int(ts_ns), stream, int(seq)), float(written_at))
        except ValueError:
            return None


def run_of(date: str, start_ns: int | None, end_ns: int | None) -> str:
    """The identity of a replay: its day and the window replayed of it."""
    return f"{date}/{start_ns or ''}/{end_ns or ''}"


async def read_positions(
    client: aioredis.Redis | RedisCluster,
    keys: Mapping[str, str],
    stream: str,
    run: str,
    now: float,
) -> dict[str, Key]:
    """The fresh positions of ``stream`` in ``run``, by underlying (``keys``: each one's hash)."""
    found = {}
    for underlying, key in keys.items():
        raw = await client.hget(key, stream)
        position = Position.decode(raw) if raw is not None else None
        if position and position.run == run and now - position.written_at <= STALE_SECONDS:
            found[underlying] = position.key
    return found
