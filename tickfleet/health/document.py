"""The fleet's health document: one place that decides ok, degraded or down.

``down`` means this API cannot reach Redis or the database (HTTP 503). ``degraded``
means it can, but part of the fleet is not doing its job: a stream that should run has
no lease or no status, a streaming one has had no tick for a while (live: a Kite
connection has been down for a while), Kite refused an account's session, an active
subscription is not streaming (beyond the grace of a transient reason), the publish
breaker is open, the last reload failed, the registry is empty, or this API reads
another database than the fleet's assignment came from. ``warnings`` say what will
become a problem if nobody acts (the exchange calendar running out).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from tickfleet.accounts.access_tokens import SessionState, read_sessions
from tickfleet.assignment.plan import Assignment
from tickfleet.breaker import BreakerConfig, BreakerSnapshot
from tickfleet.breaker.view import read_shared, worst_local
from tickfleet.control.presence import Capacity, fleet_capacity
from tickfleet.control.reload import ReloadCoordinator
from tickfleet.health.coverage import REASONS, Coverage, Grace, coverage
from tickfleet.keyspace.keys import (
    PUBLISH_BREAKER,
    UNDERLYING_STREAM,
    account_stream,
    stream_account,
)
from tickfleet.stream.status import EXCLUDED_REASONS, read_excluded, read_streams
from tickfleet.subscriptions.store import Subscription
from tickfleet.supervision.failures import RedisFailureLog
from tickfleet.wiring.services import Services

CALENDAR_WARNING_DAYS = 30


def _timed(check: Callable[[], object]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _db_write_probe(services: Services) -> None:
    """Take the lock a subscription write takes, in a transaction rolled back at once.

    ``SELECT 1`` once said "ok" while a write lock held on the SQLite file made every
    ``POST /subscriptions`` fail. SQLite: ``BEGIN IMMEDIATE`` waits for the file's write
    lock; PostgreSQL: a read-only server refuses ``ROW EXCLUSIVE`` on the table, and a
    migration's lock makes it wait. Both waits end within the database timeout.
    """
    with services.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("LOCK TABLE subscriptions IN ROW EXCLUSIVE MODE"))
        conn.rollback()


def _database(services: Services) -> dict[str, Any]:
    """Whether the database answers and takes writes: not ok when either fails."""
    check = _timed(lambda: _db_read(services))
    if not check["ok"]:
        return {**check, "writable": False}
    write = _timed(lambda: _db_write_probe(services))
    if not write["ok"]:
        return {"ok": False, "writable": False, "error": f"not writable: {write['error']}"}
    return {**check, "writable": True}


def _db_read(services: Services) -> None:
    with services.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def health_document(services: Services, coordinator: ReloadCoordinator) -> dict[str, Any]:
    redis_check = _timed(services.redis.ping)
    db_check = _database(services)
    doc: dict[str, Any] = {"redis": redis_check, "database": db_check}
    if not redis_check["ok"] or not db_check["ok"]:
        doc["status"] = "down"
        return doc
    doc["reload"] = coordinator.status()
    assignment, active, doc["streams"] = _fleet_reads(services)
    covered = fleet_coverage(services, assignment, active, doc["streams"])
    doc["subscriptions"] = covered.to_dict()
    doc["registry"] = {"instruments": services.registry.count()}
    doc["sessions"] = {a: state.to_dict() for a, state in kite_sessions(services).items()}
    doc["breaker"] = _breaker(services, doc["streams"].values())
    recent = RedisFailureLog(services.redis, services.keys.task_failures).recent(10)
    doc["failures"] = [f.to_dict() for f in recent]
    room, doc["stream_workers"] = _stream_workers(services)
    doc["problems"] = _problems(doc, services, assignment) + covered.problems()
    waiting = sum(1 for s in doc["streams"].values() if s["expected"] and not s["lease_holder"])
    doc["problems"] += [p for p in [room.problem(waiting)] if p]
    doc["warnings"] = _warnings(services) + room.warnings(services.clock.time())
    doc["status"] = "degraded" if doc["problems"] else "ok"
    return doc


def _stream_workers(services: Services) -> tuple[Capacity, dict[str, Any]]:
    """The stream workers as they announce themselves, and the room they have left."""
    now = services.clock.time()
    room = fleet_capacity(services.redis, services.keys, now)
    workers = [{**asdict(r), "state": r.state(now)} for r in room.workers]
    return room, {"free_slots": room.free_slots, "workers": workers}


def expected_streams(assignment: Assignment | None, active: Sequence[Subscription]) -> list[str]:
    """Streams that should run: the assignment's, or (Redis emptied) the SQL placements'."""
    if assignment is not None:
        return assignment.streams()
    accounts = {s.account for s in active if s.account is not None}
    return [account_stream(a) for a in sorted(accounts)] + [UNDERLYING_STREAM]


def fleet_coverage(
    services: Services,
    assignment: Assignment | None,
    active: Sequence[Subscription],
    streams: dict[str, dict[str, Any]],
) -> Coverage:
    """The verdict on every active subscription, from this request's reads."""
    s = services.settings
    excluded = {
        name: read_excluded(services.redis, services.keys, name)
        for name in streams
        if stream_account(name) is not None
    }
    grace = Grace(
        pending=s.stream_stale_seconds + s.reload_max_wait_seconds,
        expired=s.mock_expiry_sweep_seconds + s.stream_stale_seconds,
    )
    return coverage(
        active,
        services.registry.get_many([sub.token for sub in active]),
        assignment,
        streams,
        excluded,
        services.hours,
        services.hours.at(services.clock.time()),
        grace,
    )


def _breaker(services: Services, streams: Iterable[dict[str, Any]]) -> dict[str, Any]:
    config = BreakerConfig.from_settings(services.settings)
    try:
        view = read_shared(
            services.breaker_store, services.keys, PUBLISH_BREAKER, config, services.clock.time()
        )
    except redis.RedisError:
        view = worst_local(streams) or BreakerSnapshot(
            state="unknown", failure_count=0, opened_at=None, source="local"
        )
    return dict(view)


def _problems(doc: dict[str, Any], services: Services, assignment: Assignment | None) -> list[str]:
    problems = []
    if doc["registry"]["instruments"] == 0:
        problems.append("the instrument registry is empty (run `tickfleet init-db`)")
    if assignment is not None and assignment.database not in (None, services.database_id):
        problems.append(
            f"this API reads database {services.database_id}, the fleet's assignment "
            f"v{assignment.version} comes from {assignment.database}: check DATABASE_URL"
        )
    problems.extend(_session_problems(doc["sessions"]))
    if doc["breaker"]["state"] != "closed":
        problems.append(f"publish breaker is {doc['breaker']['state']}")
    if doc["reload"]["last_error"]:
        problems.append(f"last reload failed: {doc['reload']['last_error']}")
    for name, stream in doc["streams"].items():
        if stream["problem"]:
            problems.append(f"stream {name}: {stream['problem']}")
    return problems


def _session_problems(sessions: dict[str, dict[str, Any]]) -> list[str]:
    return [
        f"account {account_id}: Kite refused its session ({session['reason']}); post a new "
        f"access token to /admin/accounts/{account_id}/token"
        for account_id, session in sessions.items()
        if session["state"] == "refused"
    ]


def _warnings(services: Services) -> list[str]:
    calendar = services.hours.calendar
    soon = services.hours.at(services.clock.time()).date() + timedelta(CALENDAR_WARNING_DAYS)
    if calendar.knows(soon):
        return []
    return [
        f"exchange calendar {calendar.name} lists holidays only up to {calendar.last_known}; "
        "after that only weekends are known (upgrade exchange-calendars)"
    ]


def kite_sessions(services: Services) -> dict[str, SessionState]:
    """The session state of every account with Kite credentials."""
    accounts = [a.account_id for a in services.accounts if a.has_credentials]
    return read_sessions(services.redis, services.keys, accounts)


def current_coverage(services: Services) -> Coverage:
    """The subscriptions' verdict now (for the metrics, without the rest of /health)."""
    return fleet_coverage(services, *_fleet_reads(services))


def _fleet_reads(
    services: Services,
) -> tuple[Assignment | None, list[Subscription], dict[str, dict[str, Any]]]:
    """The saved assignment, the active subscriptions and every expected stream's status."""
    assignment = services.assignments.find()
    active = services.subscriptions.active()
    streams = read_streams(
        services.redis,
        services.keys,
        expected_streams(assignment, active),
        services.clock.time(),
        services.settings.stream_stale_seconds,
    )
    return assignment, active, streams


class CoverageCollector(Collector):
    """``subscriptions_active``, ``_streaming`` and ``_not_streaming{reason}``, at scrape time.

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


def current_streams(services: Services) -> dict[str, dict[str, Any]]:
    """Every expected stream's status (for the metrics, without the rest of /health)."""
    return _fleet_reads(services)[2]
