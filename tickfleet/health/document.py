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
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import redis
from redis import Redis
from sqlalchemy import Engine, text

from tickfleet.accounts.access_tokens import SessionState, read_sessions
from tickfleet.accounts.config import Account
from tickfleet.assignment.plan import Assignment
from tickfleet.assignment.store import AssignmentStore
from tickfleet.breaker import BreakerConfig, BreakerSnapshot
from tickfleet.breaker.view import SEVERITY, read_shared, worst_local
from tickfleet.control.presence import Capacity, fleet_capacity
from tickfleet.control.reload import ReloadCoordinator
from tickfleet.health.coverage import Coverage, Grace, coverage
from tickfleet.instruments import InstrumentRegistry
from tickfleet.keyspace.keys import PUBLISH_BREAKER, Keys, publish_breaker
from tickfleet.keyspace.streams import account_stream, stream_account, underlying_stream
from tickfleet.market.hours import MarketHours
from tickfleet.runtime.clock import Clock
from tickfleet.stream.status import read_excluded, read_streams
from tickfleet.subscriptions.store import Subscription, SubscriptionStore
from tickfleet.supervision.failures import RedisFailureLog


@dataclass(frozen=True, slots=True)
class HealthSources:
    """What the health document reads, and nothing else (the wiring builds it).

    The fleet's Redis and the breaker's store, the database and the stores read through
    it, the clock and the market's hours, the accounts, and the settings that bound the
    verdicts: how old a stream's status may be, the grace of transient reasons, the
    breaker's configuration.
    """

    redis: Redis
    keys: Keys
    engine: Engine
    registry: InstrumentRegistry
    subscriptions: SubscriptionStore
    assignments: AssignmentStore
    breaker_store: Redis
    breaker: BreakerConfig
    clock: Clock
    hours: MarketHours
    accounts: Callable[[], Sequence[Account]]
    underlyings: tuple[str, ...]
    database_id: Callable[[], str]
    stale_seconds: float
    grace: Grace
    archive_min_free_bytes: int = 0  # below it on a stream's archive disk: a warning


CALENDAR_WARNING_DAYS = 30


def _timed(check: Callable[[], object]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _db_write_probe(engine: Engine) -> None:
    """Take the lock a subscription write takes, in a transaction rolled back at once.

    ``SELECT 1`` once said "ok" while a write lock held on the SQLite file made every
    ``POST /subscriptions`` fail. SQLite: ``BEGIN IMMEDIATE`` waits for the file's write
    lock; PostgreSQL: a read-only server refuses ``ROW EXCLUSIVE`` on the table, and a
    migration's lock makes it wait. Both waits end within the database timeout.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("LOCK TABLE subscriptions IN ROW EXCLUSIVE MODE"))
        conn.rollback()


def _database(engine: Engine) -> dict[str, Any]:
    """Whether the database answers and takes writes: not ok when either fails."""
    check = _timed(lambda: _db_read(engine))
    if not check["ok"]:
        return {**check, "writable": False}
    write = _timed(lambda: _db_write_probe(engine))
    if not write["ok"]:
        return {"ok": False, "writable": False, "error": f"not writable: {write['error']}"}
    return {**check, "writable": True}


def _db_read(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def health_document(sources: HealthSources, coordinator: ReloadCoordinator) -> dict[str, Any]:
    redis_check = _timed(sources.redis.ping)
    db_check = _database(sources.engine)
    doc: dict[str, Any] = {"redis": redis_check, "database": db_check}
    if not redis_check["ok"] or not db_check["ok"]:
        doc["status"] = "down"
        return doc
    now = sources.clock.time()
    doc["reload"] = coordinator.status()
    assignment, active, doc["streams"] = _fleet_reads(sources)
    covered = fleet_coverage(sources, assignment, active, doc["streams"])
    doc["subscriptions"] = covered.to_dict()
    doc["registry"] = {"instruments": sources.registry.count()}
    doc["sessions"] = {a: state.to_dict() for a, state in kite_sessions(sources).items()}
    doc["breaker"] = _breaker(sources, doc["streams"].values())
    recent = RedisFailureLog(sources.redis, sources.keys.task_failures).recent(10)
    doc["failures"] = [f.to_dict() for f in recent]
    room, doc["stream_workers"] = _stream_workers(sources.redis, sources.keys, now)
    doc["problems"] = _problems(doc, sources.database_id, assignment) + covered.problems()
    waiting = sum(1 for s in doc["streams"].values() if s["expected"] and not s["lease_holder"])
    doc["problems"] += [p for p in [room.problem(waiting)] if p]
    doc["archive"] = {n: s["archive"] for n, s in doc["streams"].items() if s.get("archive")}
    doc["problems"] += archive_problems(doc["archive"])
    doc["warnings"] = _warnings(sources.hours, now) + room.warnings(now)
    doc["warnings"] += archive_warnings(doc["archive"], sources.archive_min_free_bytes)
    doc["status"] = "degraded" if doc["problems"] else "ok"
    return doc


def _stream_workers(client: redis.Redis, keys: Keys, now: float) -> tuple[Capacity, dict[str, Any]]:
    """The stream workers as they announce themselves, and the room they have left."""
    room = fleet_capacity(client, keys, now)
    workers = [{**asdict(r), "state": r.state(now)} for r in room.workers]
    return room, {"free_slots": room.free_slots, "workers": workers}


def expected_streams(
    assignment: Assignment | None, active: Sequence[Subscription], underlyings: Sequence[str]
) -> list[str]:
    """Streams that should run: the assignment's, or (Redis emptied) the SQL placements'
    and the configured underlyings'."""
    if assignment is not None:
        return assignment.streams()
    accounts = {s.account for s in active if s.account is not None}
    indices = [underlying_stream(u) for u in underlyings]
    return [account_stream(a) for a in sorted(accounts)] + indices


def fleet_coverage(
    sources: HealthSources,
    assignment: Assignment | None,
    active: Sequence[Subscription],
    streams: dict[str, dict[str, Any]],
) -> Coverage:
    """The verdict on every active subscription, from this request's reads."""
    excluded = {
        name: read_excluded(sources.redis, sources.keys, name)
        for name in streams
        if stream_account(name) is not None
    }
    return coverage(
        active,
        sources.registry.get_many([sub.token for sub in active]),
        assignment,
        streams,
        excluded,
        sources.hours,
        sources.hours.at(sources.clock.time()),
        sources.grace,
    )


def _breaker(sources: HealthSources, streams: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The most severe publish breaker: ``publish`` on one Redis, and on a Redis Cluster
    each underlying's own (``publish:nifty``), named in ``name``."""
    names = [PUBLISH_BREAKER, *(publish_breaker(u) for u in sources.underlyings)]
    now = sources.clock.time()
    try:
        views = [
            (name, read_shared(sources.breaker_store, sources.keys, name, sources.breaker, now))
            for name in names
        ]
    except redis.RedisError:
        view = worst_local(streams) or BreakerSnapshot(
            state="unknown", failure_count=0, opened_at=None, source="local"
        )
        return {**view, "name": PUBLISH_BREAKER}
    name, view = max(views, key=lambda nv: (SEVERITY[nv[1]["state"]], nv[1]["failure_count"]))
    return {**view, "name": name}


def _problems(
    doc: dict[str, Any], database_id: Callable[[], str], assignment: Assignment | None
) -> list[str]:
    problems = []
    if doc["registry"]["instruments"] == 0:
        problems.append("the instrument registry is empty (run `tickfleet init-db`)")
    if assignment is not None and assignment.database not in (None, database_id()):
        problems.append(
            f"this API reads database {database_id()}, the fleet's assignment "
            f"v{assignment.version} comes from {assignment.database}: check DATABASE_URL"
        )
    problems.extend(_session_problems(doc["sessions"]))
    if doc["breaker"]["state"] != "closed":
        problems.append(f"publish breaker {doc['breaker']['name']} is {doc['breaker']['state']}")
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


def archive_problems(archives: dict[str, dict[str, Any]]) -> list[str]:
    """A stream whose last archive flush lost ticks: published, not archived."""
    problems = []
    for stream, report in sorted(archives.items()):
        if report.get("failing"):
            lost = sum(report.get("dropped", {}).values())
            why = report.get("last_error") or "the writer fell behind"
            problems.append(
                f"stream {stream}: archive at {report['dir']} is losing ticks "
                f"({report['failing']}: {why}); {lost} not archived so far, publishing goes on"
            )
    return problems


def archive_warnings(archives: dict[str, dict[str, Any]], floor: int) -> list[str]:
    """Each archive directory whose filesystem has less free space than ``floor``."""
    low: dict[str, int] = {}
    for report in archives.values():
        free = report.get("free_bytes")
        if free is not None and free < floor:
            low[report["dir"]] = min(free, low.get(report["dir"], free))
    return [
        f"archive at {folder}: {free / 2**20:.0f} MiB free, under the "
        f"{floor / 2**20:.0f} MiB floor (TICKFLEET_ARCHIVE_MIN_FREE_MB)"
        for folder, free in sorted(low.items())
    ]


def _warnings(hours: MarketHours, now: float) -> list[str]:
    calendar = hours.calendar
    soon = hours.at(now).date() + timedelta(CALENDAR_WARNING_DAYS)
    if calendar.knows(soon):
        return []
    return [
        f"exchange calendar {calendar.name} lists holidays only up to {calendar.last_known}; "
        "after that only weekends are known (upgrade exchange-calendars)"
    ]


def kite_sessions(sources: HealthSources) -> dict[str, SessionState]:
    """The session state of every account with Kite credentials."""
    accounts = [a.account_id for a in sources.accounts() if a.has_credentials]
    return read_sessions(sources.redis, sources.keys, accounts)


def current_coverage(sources: HealthSources) -> Coverage:
    """The subscriptions' verdict now (for the metrics, without the rest of /health)."""
    return fleet_coverage(sources, *_fleet_reads(sources))


def _fleet_reads(
    sources: HealthSources,
) -> tuple[Assignment | None, list[Subscription], dict[str, dict[str, Any]]]:
    """The saved assignment, the active subscriptions and every expected stream's status."""
    assignment = sources.assignments.find()
    active = sources.subscriptions.active()
    streams = read_streams(
        sources.redis,
        sources.keys,
        expected_streams(assignment, active, sources.underlyings),
        sources.clock.time(),
        sources.stale_seconds,
    )
    return assignment, active, streams


def current_streams(sources: HealthSources) -> dict[str, dict[str, Any]]:
    """Every expected stream's status (for the metrics, without the rest of /health)."""
    return _fleet_reads(sources)[2]
