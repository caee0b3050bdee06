"""Recording: every process records into a ``MetricsBuffer`` (a dict update, no I/O on
the hot path) and flushes it to Redis in one pipeline.

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

import threading
from bisect import bisect_left
from collections.abc import Sequence

import numpy as np
import redis
import redis.asyncio as aioredis

from tickfleet.keyspace.keys import Keys, MetricKeys
from tickfleet.metrics.catalog import Labels, label_key, spec_of

# A gauge outlives its last flush by this many flush periods: a few missed flushes (a
# slow loop, a Redis blip) do not make a live worker's series blink out.
GAUGE_TTL_FLUSHES = 5
DEFAULT_GAUGE_TTL_SECONDS = 5.0


Deltas = dict[tuple[str, str], float]


class MetricsBuffer:
    """Thread-safe in-memory deltas, drained into Redis by ``flush``, and current gauges,
    rewritten by every flush so they stay alive exactly as long as their process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deltas: dict[tuple[str, str], float] = {}
        self._gauges: dict[tuple[str, str], float] = {}

    def inc(self, name: str, amount: float = 1.0, labels: Labels = None) -> None:
        key = (name, label_key(spec_of(name, "counter"), labels))
        with self._lock:
            self._deltas[key] = self._deltas.get(key, 0.0) + amount

    def observe(self, name: str, value: float, labels: Labels = None) -> None:
        self.observe_many(name, (value,), labels)

    def observe_many(self, name: str, values: Sequence[float], labels: Labels = None) -> None:
        """Observe a batch under one lock (the publisher records a whole batch at once)."""
        spec = spec_of(name, "histogram")
        base = label_key(spec, labels)
        counts = _bucket_counts(spec.buckets, values)
        with self._lock:
            for bucket, n in counts.items():
                key = (name, f"{base}|b|{bucket}")
                self._deltas[key] = self._deltas.get(key, 0.0) + n
            for field, amount in ((f"{base}|count", len(values)), (f"{base}|sum", sum(values))):
                self._deltas[(name, field)] = self._deltas.get((name, field), 0.0) + amount

    def set_gauge(self, name: str, value: float, labels: Labels = None) -> None:
        key = (name, label_key(spec_of(name, "gauge"), labels))
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
NOW_MS = """
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
    + NOW_MS
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
    """Where the metric hashes of a fleet with ``key_prefix`` live."""
    return Keys(key_prefix).metrics.prefix
