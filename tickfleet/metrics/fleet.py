"""The fleet's totals read back from Redis: the ``/metrics`` collector and single reads.

Counters and histograms are the sums every process flushed; gauges are the series of
processes still reporting them (a series past its deadline is deleted by the read).
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tickfleet.keyspace.keys import Keys, MetricKeys
from tickfleet.metrics.buffer import NOW_MS, metrics_prefix
from tickfleet.metrics.catalog import CATALOG, Labels, MetricSpec, label_key, spec_of

# The live series of one gauge, label values and value alternating; a series past its
# deadline, or without one (written before gauges expired), is deleted instead.
_READ_GAUGES = (
    """
local series = KEYS[1]
local deadlines = KEYS[2]
"""
    + NOW_MS
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
    spec = spec_of(name, "gauge")
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
    field = label_key(spec_of(name, "counter"), labels)
    raw = client.hget(metrics_prefix(key_prefix) + name, field)
    return float(raw) if raw is not None else 0.0
