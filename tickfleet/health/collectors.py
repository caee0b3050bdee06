"""The fleet's Prometheus collectors computed at scrape time, from the same reads as ``/health``.

They read through callables the API hands in (``current_coverage``, ``current_streams``,
``kite_sessions`` of ``tickfleet.health.document``), so ``/metrics`` and ``/health`` can
never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tickfleet.accounts.access_tokens import SessionState
from tickfleet.health.coverage import REASONS, Coverage
from tickfleet.stream.status import EXCLUDED_REASONS


class CoverageCollector(Collector):
    """``subscriptions_active``, ``_streaming`` and ``_not_streaming{reason}``, and the first
    two per underlying (``underlying_subscriptions_*{underlying}``), at scrape time.

    Computed by the same code as ``/health`` from the database and Redis, so the two
    can never disagree; every known reason is exported, at zero when nothing has it.
    """

    def __init__(self, compute: Callable[[], Coverage]) -> None:
        self._compute = compute

    def collect(self) -> Iterable[GaugeMetricFamily]:
        covered = self._compute()
        yield GaugeMetricFamily(
            "subscriptions_active", "Active subscriptions.", value=covered.active
        )
        yield GaugeMetricFamily(
            "subscriptions_streaming",
            "Active subscriptions streaming now.",
            value=covered.streaming,
        )
        family = GaugeMetricFamily(
            "subscriptions_not_streaming",
            "Active subscriptions not streaming, by reason (see /health).",
            labels=["reason"],
        )
        counts = covered.by_reason()
        for reason in sorted({*REASONS, *EXCLUDED_REASONS, *counts}):
            family.add_metric([reason], counts.get(reason, 0))
        yield family
        yield from _by_underlying(covered)


def _by_underlying(covered: Coverage) -> Iterable[GaugeMetricFamily]:
    """The same counts per underlying, so one underlying's outage shows by its name."""
    active = GaugeMetricFamily(
        "underlying_subscriptions_active",
        "Active subscriptions of each underlying.",
        labels=["underlying"],
    )
    streaming = GaugeMetricFamily(
        "underlying_subscriptions_streaming",
        "Active subscriptions of each underlying streaming now.",
        labels=["underlying"],
    )
    for name, counts in covered.by_underlying().items():
        active.add_metric([name], counts["active"])
        streaming.add_metric([name], counts["streaming"])
    yield active
    yield streaming


class KiteCollector(Collector):
    """The live feed's state at scrape time, from the same reads as ``/health``.

    ``kite_session_valid{account}``: 1 while Kite takes the account's token, 0 once it
    refused it, absent until a stream has tried one. ``kite_connection_up{stream,
    connection}``: 1 while a live stream's Kite connection is open, 0 while it is down.
    """

    def __init__(
        self,
        sessions: Callable[[], dict[str, SessionState]],
        streams: Callable[[], dict[str, dict[str, Any]]],
    ) -> None:
        self._sessions = sessions
        self._streams = streams

    def collect(self) -> Iterable[GaugeMetricFamily]:
        valid = GaugeMetricFamily(
            "kite_session_valid", "Kite accepts the account's access token.", labels=["account"]
        )
        for account_id, state in sorted(self._sessions().items()):
            if state.verdict is not None:
                valid.add_metric([account_id], 1.0 if state.verdict == "valid" else 0.0)
        yield valid
        up = GaugeMetricFamily(
            "kite_connection_up",
            "A live stream's Kite connection is open.",
            labels=["stream", "connection"],
        )
        for name, stream in sorted(self._streams().items()):
            if stream.get("mode") == "live":
                for c in stream.get("connections", []):
                    up.add_metric([name, str(c["connection"])], 1.0 if c["connected"] else 0.0)
        yield up


class StreamCollector(Collector):
    """Every expected stream at scrape time, from the same reads as ``/health``.

    ``stream_lease_held{stream}``: 1 while a worker holds the stream's lease, 0 while none
    does (a failover in progress, or no stream worker with room). ``stream_healthy{stream}``:
    1 while ``/health`` names no problem of the stream (held, connected, ticking).
    """

    def __init__(self, streams: Callable[[], dict[str, dict[str, Any]]]) -> None:
        self._streams = streams

    def collect(self) -> Iterable[GaugeMetricFamily]:
        held = GaugeMetricFamily(
            "stream_lease_held", "A worker holds the stream's lease.", labels=["stream"]
        )
        healthy = GaugeMetricFamily(
            "stream_healthy", "The stream has no problem in /health.", labels=["stream"]
        )
        for name, stream in sorted(self._streams().items()):
            held.add_metric([name], 1.0 if stream.get("lease_holder") else 0.0)
            healthy.add_metric([name], 0.0 if stream.get("problem") else 1.0)
        yield held
        yield healthy
