"""What each stream reports about itself, and how /health reads the fleet's streams."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import standby_host
from tickfleet.kite.connection import ConnectionStatus

STATUS_TTL_SECONDS = 30

# Why a stream holds an assigned token without streaming it (see ``StreamStatus.excluded``).
EXCLUDED_MOCK_CAP = "mock_cap"
EXCLUDED_EXPIRED = "expired"
EXCLUDED_NOT_SIMULATED = "not_simulated"
EXCLUDED_NOT_CATALOGUED = "not_catalogued"  # live: no registry row in the stream's catalog
EXCLUDED_NOT_CONFIGURED = "underlying_not_configured"  # not in TICKFLEET_UNDERLYINGS
EXCLUDED_NOT_RECORDED = "not_recorded"  # replay: no tick of it in the replayed day
EXCLUDED_REASONS = (
    EXCLUDED_MOCK_CAP,
    EXCLUDED_EXPIRED,
    EXCLUDED_NOT_SIMULATED,
    EXCLUDED_NOT_CATALOGUED,
    EXCLUDED_NOT_CONFIGURED,
    EXCLUDED_NOT_RECORDED,
)


def replay_words(date: str | None, speed: float | None, finished: bool = False) -> str:
    """``replay of 2026-06-05 at 5x`` (a multiplication sign for the x): the words /health
    and ``tickfleet status`` show for a replaying stream."""
    day = f"of {date}" if date else "of a recorded day"
    pace = (
        ""
        if speed is None
        else (", unpaced" if speed == 0 else f" at {speed:g}\N{MULTIPLICATION SIGN}")
    )
    return f"replay {day}{pace}{' (finished)' if finished else ''}"


@dataclass(slots=True)
class StreamStatus:
    """Mutable status owned by one stream; a reporter coroutine writes it to Redis.

    Feeds update what only they know (mode, tokens, last tick, the assignment version
    they run, the assigned tokens they do not stream and why); the reporter fills in
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
    unavailable: str | None = None  # why the stream streams nothing while it should
    assignment_version: int | None = None
    assignment_saved_at: float | None = None  # with the version, names the assignment run
    breaker_state: str | None = None
    breaker_source: str | None = None
    breaker_failures: int = 0
    breaker_opened_at: float | None = None
    excluded: Mapping[int, str] = field(default_factory=dict)  # the running feed's
    session: str | None = None  # live: connecting, valid or refused
    replay_date: str | None = None  # replay: the market date replayed (YYYY-MM-DD)
    replay_speed: float | None = None  # replay: times real time (0: unpaced)
    replay_finished_at: float | None = None  # replay: when its last tick went out
    connections: dict[int, ConnectionStatus] = field(default_factory=dict)  # live only
    archive: dict[str, Any] | None = None  # the recorder's report; None: not archiving

    def fields(self, reported_at: float) -> dict[str, str]:
        values: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("excluded", "connections", "archive")
        }
        values["archive"] = orjson.dumps(self.archive).decode() if self.archive else None
        values["reported_at"] = reported_at
        values["excluded_count"] = len(self.excluded)
        values["connections"] = orjson.dumps(
            [c.to_dict() for _, c in sorted(self.connections.items())]
        ).decode()
        return {k: "" if v is None else str(v) for k, v in values.items()}


class StatusWriter:
    """Writes one stream's status; the excluded tokens only when they changed.

    The status hash is rewritten every report (about once a second); the excluded map
    can hold thousands of tokens, so it is kept in its own key and only its TTL is
    refreshed while it stays the same.
    """

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._written: dict[int, str] | None = None

    async def write(self, status: StreamStatus, now: float) -> None:
        key = self._keys.stream_status(status.stream)
        excluded_key = self._keys.stream_excluded(status.stream)
        excluded = dict(status.excluded)
        changed = excluded != self._written
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=status.fields(now))  # type: ignore[arg-type]
            pipe.expire(key, STATUS_TTL_SECONDS)
            pipe.sadd(self._keys.streams_known, status.stream)
            if changed:
                pipe.set(excluded_key, orjson.dumps({str(t): r for t, r in excluded.items()}))
            pipe.expire(excluded_key, STATUS_TTL_SECONDS)
            await pipe.execute()
        if changed:
            self._written = excluded


def _parse(raw: dict[bytes, bytes]) -> dict[str, Any]:
    text = {k.decode(): v.decode() for k, v in raw.items()}
    out: dict[str, Any] = {k: (v or None) for k, v in text.items()}
    for name in ("tokens", "ticks", "breaker_failures", "excluded_count"):
        out[name] = int(text.get(name) or 0)
    out["connections"] = orjson.loads(text["connections"]) if text.get("connections") else []
    out["archive"] = orjson.loads(text["archive"]) if text.get("archive") else None
    out["assignment_version"] = (
        int(text["assignment_version"]) if text.get("assignment_version") else None
    )
    for name in (
        "last_tick_at",
        "started_at",
        "reported_at",
        "breaker_opened_at",
        "assignment_saved_at",
        "replay_speed",
        "replay_finished_at",
    ):
        out[name] = float(text[name]) if text.get(name) else None
    out["replay"] = None
    if out.get("mode") == "replay":
        finished = out["replay_finished_at"] is not None
        out["replay"] = replay_words(out.get("replay_date"), out["replay_speed"], finished)
    return out


def read_excluded(client: redis.Redis, keys: Keys, stream: str) -> dict[int, str]:
    raw = client.get(keys.stream_excluded(stream))
    return {int(t): str(r) for t, r in orjson.loads(raw).items()} if raw else {}


def read_streams(
    client: redis.Redis, keys: Keys, expected: Iterable[str], now: float, stale_seconds: float
) -> dict[str, dict[str, Any]]:
    """Status of every expected or reporting stream, with the lease holder, the worker of
    its standby (which is no problem, present or not) and a verdict."""
    known = {n.decode() if isinstance(n, bytes) else n for n in client.smembers(keys.streams_known)}
    names = sorted(set(expected) | known)
    wanted = set(expected)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.stream_status(name))
        pipe.get(keys.stream_lease(name))
        pipe.get(keys.stream_standby(name))
    results = pipe.execute()
    out = {}
    for i, name in enumerate(names):
        raw, holder, standby = results[3 * i : 3 * i + 3]
        status = _parse(raw)
        if not raw and holder is None and name not in wanted:
            continue
        _add_ages(status["connections"], now)
        status["lease_holder"] = holder.decode() if holder else None
        status["standby"] = standby_host(standby)
        status["expected"] = name in wanted
        status["problem"] = _problem(status, bool(raw), now, stale_seconds)
        out[name] = status
    return out


def _add_ages(connections: list[dict[str, Any]], now: float) -> None:
    """Seconds since each connection's last tick and heartbeat, as an operator reads them."""
    for c in connections:
        for moment in ("last_tick_at", "last_heartbeat_at"):
            at = c.get(moment)
            c[moment.replace("_at", "_age")] = round(now - at, 1) if at is not None else None


def _problem(
    status: dict[str, Any], reported: bool, now: float, stale_seconds: float
) -> str | None:
    if not status["expected"]:
        return None
    if status["lease_holder"] is None:
        return "no stream holds the lease"
    if not reported:
        return "the stream holding the lease reports no status"
    if status.get("unavailable"):
        return f"the stream is idle: {status['unavailable']}"
    if status.get("mode") == "live":
        return _disconnected(status, now, stale_seconds)
    return _stale(status, now, stale_seconds)


def _disconnected(status: dict[str, Any], now: float, grace: float) -> str | None:
    """A live stream's first connection down for longer than ``grace``, if any.

    Live liveness is the connections': an illiquid option may not tick for minutes,
    while Kite's heartbeats keep a healthy connection talking every second.
    """
    for connection in status.get("connections", []):
        since = connection.get("since") or status.get("started_at") or now
        if not connection.get("connected") and now - since > grace:
            why = connection.get("last_error") or "never connected"
            return f"Kite connection {connection['connection']} down for {now - since:.0f}s ({why})"
    return None


def _stale(status: dict[str, Any], now: float, stale_seconds: float) -> str | None:
    if status.get("mode") != "mock":
        return None
    last = status.get("last_tick_at") or status.get("started_at")
    if status.get("tokens", 0) > 0 and (last is None or now - last > stale_seconds):
        return f"no tick for more than {stale_seconds:.0f}s"
    return None
