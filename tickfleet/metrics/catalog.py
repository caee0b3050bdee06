"""What the fleet may record: every metric's name, kind, help and labels, and the
interface domain code records through (``Metrics``, which never blocks or raises).

A name outside the catalog, or labels other than its own, is a programming error caught
where it is recorded, not a series that silently appears in ``/metrics``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import orjson

Kind = Literal["counter", "gauge", "histogram"]
Labels = Mapping[str, str] | None

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


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
        "publish_fenced_total",
        "counter",
        "Batches the fence refused: a newer holder of the stream's lease had published.",
        ("stream",),
    ),
    MetricSpec(
        "redis_circuit_replayed_total", "counter", "Latest ticks re-published after recovery."
    ),
    MetricSpec(
        "redis_circuit_state",
        "gauge",
        "Breaker state: 0 closed, 1 open, 2 half-open.",
        ("worker", "breaker"),
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
        "archive_ticks_written_total", "counter", "Ticks written to the archive.", ("stream",)
    ),
    MetricSpec(
        "archive_dropped_total",
        "counter",
        "Published ticks the archive does not hold, by why.",
        ("reason",),
    ),
    MetricSpec("archive_parts_written_total", "counter", "Archive parts written.", ("stream",)),
    MetricSpec(
        "archive_bytes_written_total", "counter", "Bytes of archive parts written.", ("stream",)
    ),
    MetricSpec(
        "archive_write_seconds", "histogram", "Time to write one part.", (), DURATION_BUCKETS
    ),
    MetricSpec(
        "archive_queue_ticks", "gauge", "Ticks waiting for the archive writer.", ("stream",)
    ),
    MetricSpec(
        "archive_disk_free_bytes",
        "gauge",
        "Free space on the archive's filesystem, as a stream's writer sees it.",
        ("stream",),
    ),
    MetricSpec(
        "archive_disk_used_bytes",
        "gauge",
        "Bytes the archive's files take, as a stream's writer sees them.",
        ("stream",),
    ),
    MetricSpec(
        "archive_compacted_parts_total", "counter", "Small archive parts merged by compaction."
    ),
    MetricSpec(
        "archive_days_removed_total", "counter", "Archived days removed past the retention."
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


def label_key(spec: MetricSpec, labels: Labels) -> str:
    """The hash field of one series: its label values in the spec's order, as JSON."""
    values = labels or {}
    if set(values) != set(spec.labels):
        raise ValueError(f"{spec.name} takes labels {spec.labels}, got {tuple(values)}")
    return orjson.dumps([values[label] for label in spec.labels]).decode()


def spec_of(name: str, kind: Kind) -> MetricSpec:
    """The catalog's entry for ``name``, which must be of ``kind``."""
    spec = CATALOG.get(name)
    if spec is None or spec.kind != kind:
        raise KeyError(f"{name} is not a {kind} of the catalog")
    return spec
