"""What each stream reports about itself, and how /health reads the fleet's streams."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import redis

from tickfleet.names import Keys

STATUS_TTL_SECONDS = 30


@dataclass(slots=True)
class StreamStatus:
    """Mutable status owned by one stream; a reporter coroutine writes it to Redis.

    Feeds update what only they know (mode, tokens, last tick); the reporter fills in
    counters owned by others (ticks published, breaker) when it writes.
    """

    stream: str
    owner: str
    hostname: str
    mode: str = "starting"
    tokens: int = 0
    ticks: int = 0
    last_tick_at: float | None = None
    started_at: float | None = None
    last_error: str | None = None
    breaker_state: str | None = None
    breaker_source: str | None = None
    breaker_failures: int = 0
    breaker_opened_at: float | None = None

    def fields(self, reported_at: float) -> dict[str, str]:
        values = {**asdict(self), "reported_at": reported_at}
        return {k: "" if v is None else str(v) for k, v in values.items()}


def write_status(client: redis.Redis, keys: Keys, status: StreamStatus, now: float) -> None:
    key = keys.stream_status(status.stream)
    pipe = client.pipeline(transaction=False)
    pipe.hset(key, mapping=status.fields(now))  # type: ignore[arg-type]
    pipe.expire(key, STATUS_TTL_SECONDS)
    pipe.sadd(keys.streams_known, status.stream)
    pipe.execute()


def _parse(raw: dict[bytes, bytes]) -> dict[str, Any]:
    text = {k.decode(): v.decode() for k, v in raw.items()}
    out: dict[str, Any] = {k: (v or None) for k, v in text.items()}
    for name in ("tokens", "ticks", "breaker_failures"):
        out[name] = int(text.get(name) or 0)
    for name in ("last_tick_at", "started_at", "reported_at", "breaker_opened_at"):
        out[name] = float(text[name]) if text.get(name) else None
    return out


def read_streams(
    client: redis.Redis, keys: Keys, expected: Iterable[str], now: float, stale_seconds: float
) -> dict[str, dict[str, Any]]:
    """Status of every expected or reporting stream, with the lease holder and a verdict."""
    known = {n.decode() if isinstance(n, bytes) else n for n in client.smembers(keys.streams_known)}
    names = sorted(set(expected) | known)
    wanted = set(expected)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.stream_status(name))
        pipe.get(keys.stream_lease(name))
    results = pipe.execute()
    out = {}
    for i, name in enumerate(names):
        status, holder = _parse(results[2 * i]), results[2 * i + 1]
        if not status and name not in wanted:
            continue
        status["lease_holder"] = holder.decode() if holder else None
        status["expected"] = name in wanted
        status["problem"] = _problem(status, now, stale_seconds)
        out[name] = status
    return out


def _problem(status: dict[str, Any], now: float, stale_seconds: float) -> str | None:
    if not status["expected"]:
        return None
    if status["lease_holder"] is None:
        return "no stream holds the lease"
    if status.get("mode") not in ("mock", "live"):
        return None
    last = status.get("last_tick_at") or status.get("started_at")
    if status.get("tokens", 0) > 0 and (last is None or now - last > stale_seconds):
        return f"no tick for more than {stale_seconds:.0f}s"
    return None
