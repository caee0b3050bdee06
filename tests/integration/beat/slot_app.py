"""The fleet's Celery app with one fast schedule entry, for the beat tests.

Start beats and workers with ``-A tests.integration.beat.slot_app``. The schedule is the
fleet's scheduler and configuration (RedBeat, its keys and lock from ``celeryconfig``)
with one entry, ``slot``, every ``TEST_BEAT_PERIOD_SECONDS``. Each beat records every send
("<beat pid> <wall time> <task id>") and each worker every run ("<task id>") in Redis, so a
test sees who fired, when, and that each firing ran once.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import redis
from celery.signals import before_task_publish

from workers import app

SLOT_TASK = "test.beat_slot"
SENDS_KEY = "test:beat:sends"
RUNS_KEY = "test:beat:runs"
PERIOD_ENV = "TEST_BEAT_PERIOD_SECONDS"

_clients: list[redis.Redis] = []


def _client() -> redis.Redis:
    if not _clients:
        _clients.append(redis.Redis.from_url(os.environ["REDIS_URL"]))
    return _clients[0]


def _schedule() -> dict[str, Any]:
    period = timedelta(seconds=float(os.environ[PERIOD_ENV]))
    return {"beat_schedule": {"slot": {"task": SLOT_TASK, "schedule": period}}}


app.add_defaults(_schedule)  # added last, so it replaces the fleet's schedule


@app.task(name=SLOT_TASK)  # type: ignore[untyped-decorator]
def slot() -> None:
    _client().rpush(RUNS_KEY, slot.request.id)


@before_task_publish.connect  # type: ignore[untyped-decorator]
def _record_send(
    sender: str | None = None, headers: dict[str, Any] | None = None, **_: Any
) -> None:
    if sender == SLOT_TASK and headers is not None:
        _client().rpush(SENDS_KEY, f"{os.getpid()} {time.time()} {headers['id']}")


__all__ = ["app"]
