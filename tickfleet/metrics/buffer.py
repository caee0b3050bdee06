"""Fleet-wide metrics: recorded in process memory, flushed to Redis, exposed by the API.

A fleet is many processes on many hosts (prefork children included), so per-process
Prometheus registries would show each a sliver of the truth. Every process records into
a ``MetricsBuffer`` (a dict update, no I/O on the hot path) and flushes it to Redis in
one pipeline; the API's ``/metrics`` renders the fleet totals with ``FleetCollector``.
A failed flush keeps the numbers for the next one, so an outage loses no counts.

Counters and histograms are fleet totals: every process adds its deltas to one hash per
metric, so a total never goes backwards when the process that counted part of it dies.
Gauges are the other kind: a value a live process reports (``redis_circuit_state`` per
worker), meaningless once the process is gone. Each flush rewrites a process's gauges
with a deadline ``GAUGE_TTL_FLUSHES`` flush periods ahead, in Redis time so hosts' clocks
do not matter; a series whose deadline has passed is deleted by the next flush of any
process and by every scrape, so a killed worker's series leave ``/metrics`` within
that many flush periods (5 s by default), and a clean stop removes them at once.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import orjson
import redis
import redis.asyncio as aioredis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tickfleet.keyspace.keys import Keys, MetricKeys

_log = logging.getLogger("tickfleet.metrics")

Kind = Literal["counter", "gauge", "histogram"]
Labels = Mapping[str, str] | None

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# A gauge outlives its last flush by this many flush periods: a few missed flushes (a
# slow loop, a Redis blip) do not make a live worker's series blink out.
GAUGE_TTL_FLUSHES = 5
DEFAULT_GAUGE_TTL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


def _specs(*specs: MetricSpec) -> dict[str, MetricSpec]:
    return {spec.name: spec for spec in specs}


CATALOG: dict[str, MetricSpec] = _specs(
    MetricSpec("reload_requests_total", "counter", "Reload requests received."),
    MetricSpec(
        "reload_coalesced_total", "counter", "Reload requests absorbed by a scheduled reload."
    ),
    MetricSpec("reload_runs_total", "counter", "Reloads executed.", ("result",)),
    MetricSpec("reload_duration_seconds", "histogram", "Reload run time.", (), DURATION_BUCKETS),
    MetricSpec("task_failures_total", "counter", "Background task failures.", ("task",)),
    MetricSpec("ticks_published_total", "counter", "Ticks published.", ("stream",)),
    MetricSpec(
        "tick_publish_latency_seconds",
        "histogram",
        "Tick creation to publish.",
        (),
        LATENCY_BUCKETS,
    ),
    MetricSpec("stream_restarts_total", "counter", "Stream (re)starts requested.", ("stream",)),
    MetricSpec("redis_publish_total", "counter", "Ticks written to the publish Redis."),
    MetricSpec("redis_publish_failures_total", "counter", "Failed publish pipelines."),
    MetricSpec(
        "redis_circuit_open_drops_total", "counter", "Ticks dropped while the breaker was open."
    ),
    MetricSpec("publish_buffer_drops_total", "counter", "Ticks dropped: publish buffer full."),
    MetricSpec(
        "redis_circuit_replayed_total", "counter", "Latest ticks re-published after recovery."
    ),
    MetricSpec(
        "redis_circuit_state", "gauge", "Breaker state: 0 closed, 1 open, 2 half-open.", ("worker",)
    ),
    MetricSpec("mock_evictions_total", "counter", "Mock option states evicted.", ("reason",)),
    MetricSpec("subscription_events_total", "counter", "Subscription events published."),
    MetricSpec(
        "subscription_events_failed_total", "counter", "Subscription events Redis did not take."
    ),
    MetricSpec("kite_frames_total", "counter", "Kite tick frames received.", ("connection",)),
    MetricSpec(
        "kite_malformed_total", "counter", "Kite packets or frames skipped.", ("connection",)
    ),
    MetricSpec("kite_text_messages_total", "counter", "Kite text frames.", ("connection", "kind")),
    MetricSpec(
        "kite_reconnects_total", "counter", "Kite connections lost or refused.", ("connection",)
    ),
    MetricSpec(
        "kite_session_refusals_total",
        "counter",
        "Kite handshakes refused (HTTP 403).",
        ("account",),
    ),
    MetricSpec(
        "live_greeks_missing_total",
        "counter",
        "Live option ticks published without IV and greeks.",
        ("reason",),
    ),
)


class Metrics(Protocol):
    """What domain code records into; implementations must never block or raise."""

    def inc(self, name: str, amount: float = 1.0, labels: Labels = None) -> None: ...

    def observe(self, name: str, value: float, labels: Labels = None) -> None: ...

    def observe_many(self, name: str, values: Sequence[float], labels: Labels = None) -> None: ...

    def set_gauge(self, name: str, value: float, labels: Labels = None) -> None: ...


def _label_key(spec: MetricSpec, labels: Labels) -> str:
    values = labels or {}
    if set(values) != set(spec.labels):
        raise ValueError(f"{spec.name} takes labels {spec.labels}, got {tuple(values)}")
    return orjson.dumps([values[label] for label in spec.labels]).decode()


def _spec(name: str, kind: Kind) -> MetricSpec:
    spec = CATALOG.get(name)
    if spec is None or spec.kind != kind:
        raise KeyError(f"{name} is not a {kind} of the catalog")
    return spec


Deltas = dict[tuple[str, str], float]


class MetricsBuffer:
    """Thread-safe in-memory deltas, drained into Redis by ``flush``, and current gauges,
    rewritten by every flush so they stay alive exactly as long as their process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deltas: dict[tuple[str, str], float] = {}
        self._gauges: dict[tuple[str, str], float] = {}

    def inc(self, name: str, amount: float = 1.0, labels: Labels = None) -> None:
        key = (name, _label_key(_spec(name, "counter"), labels))
        with self._lock:
            self._deltas[key] = self._deltas.get(key, 0.0) + amount

    def observe(self, name: str, value: float, labels: Labels = None) -> None:
        self.observe_many(name, (value,), labels)

    def observe_many(self, name: str, values: Sequence[float], labels: Labels = None) -> None:
        """Observe a batch under one lock (the publisher records a whole batch at once)."""
        spec = _spec(name, "histogram")
        base = _label_key(spec, labels)
        counts = _bucket_counts(spec.buckets, values)
        with self._lock:
            for bucket, n in counts.items():
                key = (name, f"{base}|b|{bucket}")
                self._deltas[key] = self._deltas.get(key, 0.0) + n
            for field, amount in ((f"{base}|count", len(values)), (f"{base}|sum", sum(values))):
                self._deltas[(name, field)] = self._deltas.get((name, field), 0.0) + amount

    def set_gauge(self, name: str, value: float, labels: Labels = None) -> None:
        key = (name, _label_key(_spec(name, "gauge"), labels))
        with self._lock:
            self._gauges[key] = value

    def pending(self) -> dict[tuple[str, str], float]:
        with self._lock:
            return dict(self._deltas)

    def flush(
        self, client: redis.Redis, prefix: str, gauge_ttl: float = DEFAULT_GAUGE_TTL_SECONDS
    ) -> None:
        """Write the deltas and gauges in one pipeline; on failure the deltas are kept and
        the error re-raised."""
        deltas, gauges = self._take()
        if not deltas and not gauges:
            return
        try:
            pipe = client.pipeline(transaction=False)
            _queue(pipe, MetricKeys(prefix), deltas, gauges, gauge_ttl)
            pipe.execute()
        except Exception:
            self._restore(deltas)
            raise

    async def flush_async(
        self, client: aioredis.Redis, prefix: str, gauge_ttl: float = DEFAULT_GAUGE_TTL_SECONDS
    ) -> None:
        """``flush`` for a stream's event loop, with its async client."""
        deltas, gauges = self._take()
        if not deltas and not gauges:
            return
        try:
            async with client.pipeline(transaction=False) as pipe:
                _queue(pipe, MetricKeys(prefix), deltas, gauges, gauge_ttl)
                await pipe.execute()
        except BaseException:
            self._restore(deltas)
            raise

    def retire(self, client: redis.Redis, prefix: str) -> None:
        """Delete this buffer's gauge series: its process stops reporting them."""
        pipe = client.pipeline(transaction=False)
        _queue_retire(pipe, MetricKeys(prefix), self._take_gauges())
        pipe.execute()

    async def retire_async(self, client: aioredis.Redis, prefix: str) -> None:
        async with client.pipeline(transaction=False) as pipe:
            _queue_retire(pipe, MetricKeys(prefix), self._take_gauges())
            await pipe.execute()

    def _take(self) -> tuple[Deltas, Deltas]:
        """The deltas (drained) and the gauges (kept: each flush refreshes them)."""
        with self._lock:
            deltas, self._deltas = self._deltas, {}
            return deltas, dict(self._gauges)

    def _take_gauges(self) -> Deltas:
        with self._lock:
            gauges, self._gauges = self._gauges, {}
        return gauges

    def _restore(self, deltas: Deltas) -> None:
        with self._lock:
            for key, amount in deltas.items():
                self._deltas[key] = self._deltas.get(key, 0.0) + amount


# Redis time in milliseconds, so every host's process agrees on when a gauge expires.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# Drop the expired series of one gauge, then write this process's, each with a deadline.
_WRITE_GAUGES = (
    """
local series = KEYS[1]
local deadlines = KEYS[2]
local ttl_ms = tonumber(ARGV[1])
"""
    + _NOW_MS
    + """
for _, field in ipairs(redis.call('ZRANGEBYSCORE', deadlines, '-inf', now)) do
    redis.call('HDEL', series, field)
end
redis.call('ZREMRANGEBYSCORE', deadlines, '-inf', now)
for i = 2, #ARGV, 2 do
    redis.call('HSET', series, ARGV[i], ARGV[i + 1])
    redis.call('ZADD', deadlines, now + ttl_ms, ARGV[i])
end
return 0
"""
)

# The live series of one gauge, label values and value alternating; a series past its
# deadline, or without one (written before gauges expired), is deleted instead.
_READ_GAUGES = (
    """
local series = KEYS[1]
local deadlines = KEYS[2]
"""
    + _NOW_MS
    + """
local live = {}
local fields = redis.call('HGETALL', series)
for i = 1, #fields, 2 do
    local deadline = redis.call('ZSCORE', deadlines, fields[i])
    if deadline and tonumber(deadline) > now then
        live[#live + 1] = fields[i]
        live[#live + 1] = fields[i + 1]
    else
        redis.call('HDEL', series, fields[i])
        redis.call('ZREM', deadlines, fields[i])
    end
end
return live
"""
)

Pipeline = redis.client.Pipeline | aioredis.client.Pipeline


def _queue(
    pipe: Pipeline, keys: MetricKeys, deltas: Deltas, gauges: Deltas, gauge_ttl: float
) -> None:
    for (name, field), amount in deltas.items():
        pipe.hincrbyfloat(keys.series(name), field, amount)
    by_name: dict[str, list[str | float]] = {}
    for (name, field), value in gauges.items():
        by_name.setdefault(name, []).extend((field, value))
    ttl_ms = max(1, round(gauge_ttl * 1000))
    for name, pairs in by_name.items():
        pipe.eval(_WRITE_GAUGES, 2, keys.series(name), keys.deadlines(name), ttl_ms, *pairs)


def _queue_retire(pipe: Pipeline, keys: MetricKeys, gauges: Deltas) -> None:
    for name, field in gauges:
        pipe.hdel(keys.series(name), field)
        pipe.zrem(keys.deadlines(name), field)


_VECTOR_MIN = 64  # below this many values a Python loop beats NumPy's fixed cost


def _bucket_counts(bounds: tuple[float, ...], values: Sequence[float]) -> dict[float, int]:
    """How many ``values`` fall in each bucket (upper bound, +inf for the last)."""
    edges = (*bounds, float("inf"))
    if len(values) >= _VECTOR_MIN:
        found = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(edges))
        return {edges[i]: int(n) for i, n in enumerate(found.tolist()) if n}
    counts: dict[float, int] = {}
    for value in values:
        bucket = edges[bisect_left(bounds, value)]
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


def metrics_prefix(key_prefix: str) -> str:
    return Keys(key_prefix).metrics.prefix


class FleetCollector(Collector):
    """Prometheus collector rendering the fleet totals that processes flushed to Redis,
    and the gauges of the processes still reporting them."""

    def __init__(self, client: redis.Redis, key_prefix: str) -> None:
        self._client = client
        self._keys = Keys(key_prefix).metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        pipe = self._client.pipeline(transaction=False)
        for spec in CATALOG.values():
            _queue_read(pipe, self._keys, spec)
        for spec, raw in zip(CATALOG.values(), pipe.execute(), strict=True):
            yield _family(spec, _values(raw))


def _queue_read(pipe: redis.client.Pipeline, keys: MetricKeys, spec: MetricSpec) -> None:
    if spec.kind == "gauge":
        pipe.eval(_READ_GAUGES, 2, keys.series(spec.name), keys.deadlines(spec.name))
    else:
        pipe.hgetall(keys.series(spec.name))


def _values(raw: dict[bytes, bytes] | list[bytes]) -> dict[str, float]:
    """A hash as HGETALL returns it, or alternating fields and values from a script."""
    pairs = raw.items() if isinstance(raw, dict) else zip(raw[::2], raw[1::2], strict=True)
    return {field.decode(): float(value) for field, value in pairs}


def read_gauges(client: redis.Redis, key_prefix: str, name: str) -> dict[str, float]:
    """One gauge's live series, label values (JSON) → value (for /health and tests)."""
    spec = _spec(name, "gauge")
    keys = Keys(key_prefix).metrics
    raw = client.eval(_READ_GAUGES, 2, keys.series(spec.name), keys.deadlines(spec.name))
    return _values(raw)


def _family(
    spec: MetricSpec, values: dict[str, float]
) -> CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily:
    labels = list(spec.labels)
    if spec.kind == "histogram":
        return _histogram(spec, values)
    name = spec.name.removesuffix("_total") if spec.kind == "counter" else spec.name
    family = (CounterMetricFamily if spec.kind == "counter" else GaugeMetricFamily)(
        name, spec.help, labels=labels
    )
    if not values and not labels:
        family.add_metric([], 0.0)
    for field, value in sorted(values.items()):
        family.add_metric(orjson.loads(field), value)
    return family


def _histogram(spec: MetricSpec, values: dict[str, float]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    for base in sorted({field.split("|", 1)[0] for field in values}):
        cumulative, buckets = 0.0, []
        for bound in (*spec.buckets, float("inf")):
            cumulative += values.get(f"{base}|b|{bound}", 0.0)
            buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
        family.add_metric(orjson.loads(base), buckets, values.get(f"{base}|sum", 0.0))
    return family


def read_counter(client: redis.Redis, key_prefix: str, name: str, labels: Labels = None) -> float:
    """One fleet-wide counter value (for /health and tests)."""
    field = _label_key(_spec(name, "counter"), labels)
    raw = client.hget(metrics_prefix(key_prefix) + name, field)
    return float(raw) if raw is not None else 0.0


class MetricsFlusher:
    """Flushes a process's buffer to Redis every few seconds from a daemon thread.

    Flushing on a timer keeps metric writes off every hot path; ``stop`` flushes once
    more so a process that exits cleanly loses nothing.
    """

    def __init__(
        self,
        buffer: MetricsBuffer,
        client: redis.Redis,
        key_prefix: str,
        every_seconds: float = 1.0,
    ) -> None:
        self._buffer = buffer
        self._client = client
        self._prefix = metrics_prefix(key_prefix)
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
            self._thread.start()

    def flush(self) -> bool:
        try:
            self._buffer.flush(self._client, self._prefix, GAUGE_TTL_FLUSHES * self._every)
            return True
        except redis.RedisError as exc:
            _log.warning("metrics flush failed, kept for the next one: %s", exc)
            return False

    def stop(self) -> None:
        """Flush what is left and retire this process's gauges."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._every + 5)
            self._thread = None
        if self.flush():
            try:
                self._buffer.retire(self._client, self._prefix)
            except redis.RedisError as exc:
                _log.warning("metrics gauges not retired, they expire instead: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.flush()


class AsyncMetricsFlusher:
    """A stream's metrics, flushed every second from a coroutine on its loop.

    A stream records into a buffer of its own, so it needs no thread and no sync client;
    ``flush`` at the end writes what the last period recorded.
    """

    def __init__(
        self,
        buffer: MetricsBuffer,
        client: aioredis.Redis,
        key_prefix: str,
        every_seconds: float = 1.0,
    ) -> None:
        self._buffer = buffer
        self._client = client
        self._prefix = metrics_prefix(key_prefix)
        self._every = every_seconds

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            await self.flush()

    async def flush(self) -> bool:
        try:
            await self._buffer.flush_async(
                self._client, self._prefix, GAUGE_TTL_FLUSHES * self._every
            )
        except (redis.RedisError, OSError) as exc:
            _log.warning("metrics flush failed, kept for the next one: %s", exc)
            return False
        return True

    async def close(self) -> None:
        """The last flush, then this stream's gauges retired (they would expire anyway)."""
        if await self.flush():
            try:
                await self._buffer.retire_async(self._client, self._prefix)
            except (redis.RedisError, OSError) as exc:
                _log.warning("metrics gauges not retired, they expire instead: %s", exc)
