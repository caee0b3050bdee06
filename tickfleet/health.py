"""The fleet's health document: one place that decides ok, degraded or down.

``down`` means this API cannot reach Redis or the database (HTTP 503). ``degraded``
means it can, but part of the fleet is not doing its job: a stream that should run has
no lease, a streaming one has had no tick for a while, the publish breaker is open, or
the last reload failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import redis
from sqlalchemy import text

from tickfleet.breaker import BreakerConfig, BreakerSnapshot
from tickfleet.breaker.view import read_shared, worst_local
from tickfleet.failures import RedisFailureLog
from tickfleet.names import PUBLISH_BREAKER
from tickfleet.reload import ReloadCoordinator
from tickfleet.services import Services
from tickfleet.stream.status import read_streams

Section = Callable[[], dict[str, Any]]


def _timed(check: Callable[[], object]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _db_ping(services: Services) -> None:
    with services.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def health_document(services: Services, coordinator: ReloadCoordinator) -> dict[str, Any]:
    redis_check = _timed(services.redis.ping)
    db_check = _timed(lambda: _db_ping(services))
    doc: dict[str, Any] = {"redis": redis_check, "database": db_check}
    if not redis_check["ok"]:
        doc["status"] = "down"
        return doc
    doc["reload"] = coordinator.status()
    expected = services.assignments.load().streams()
    doc["streams"] = read_streams(
        services.redis,
        services.keys,
        expected,
        services.clock.time(),
        services.settings.stream_stale_seconds,
    )
    doc["breaker"] = _breaker(services, doc["streams"].values())
    recent = RedisFailureLog(services.redis, services.keys.task_failures).recent(10)
    doc["failures"] = [f.to_dict() for f in recent]
    problems = _problems(doc)
    doc["problems"] = problems
    doc["status"] = "down" if not db_check["ok"] else "degraded" if problems else "ok"
    return doc


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


def _problems(doc: dict[str, Any]) -> list[str]:
    problems = []
    if doc["breaker"]["state"] != "closed":
        problems.append(f"publish breaker is {doc['breaker']['state']}")
    if doc["reload"]["last_error"]:
        problems.append(f"last reload failed: {doc['reload']['last_error']}")
    for name, stream in doc["streams"].items():
        if stream["problem"]:
            problems.append(f"stream {name}: {stream['problem']}")
    return problems
