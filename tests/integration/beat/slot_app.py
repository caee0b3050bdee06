"""The fleet's Celery app with one fast schedule entry, for the beat tests.

Start beats and workers with ``-A tests.integration.beat.slot_app``. The schedule is the
fleet's scheduler and configuration (RedBeat, its keys and lock from ``celeryconfig``)
with one entry, ``slot``, every ``TEST_BEAT_PERIOD_SECONDS``. Each beat records every send
("<beat pid> <wall time> <task id>") and each worker every run ("<task id>") in Redis, so a
test sees who fired, when, and that each firing ran once; each beat also records its pid
once its scheduler is built (``READY_KEY``).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import redis
from celery.signals import before_task_publish

from workers import app
from workers.beat import FleetBeatScheduler

SLOT_TASK = "test.beat_slot"
SENDS_KEY = "test:beat:sends"
RUNS_KEY = "test:beat:runs"
READY_KEY = "test:beat:ready"
PERIOD_ENV = "TEST_BEAT_PERIOD_SECONDS"

_clients: list[redis.Redis] = []


def _client() -> redis.Redis:
    if not _clients:
        _clients.append(redis.Redis.from_url(os.environ["REDIS_URL"]))
    return _clients[0]


def _schedule() -> dict[str, Any]:
    period = timedelta(seconds=float(os.environ[PERIOD_ENV]))
    return {"beat_schedule": {"slot": {"task": SLOT_TASK, "schedule": period}}}


class ReadyScheduler(FleetBeatScheduler):
    """The fleet's scheduler, recording its beat's pid once it is built. A beat logs
    "Starting" before it builds its scheduler, which reads the schedule from Redis; once
    built, the beat lives through Redis outages."""

    def __init__(self, *args: Any, lazy: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, lazy=lazy, **kwargs)
        if not lazy:  # a lazy one only describes the scheduler in the start-up banner
            _client().rpush(READY_KEY, os.getpid())


app.add_defaults(_schedule)  # added last, so it replaces the fleet's schedule
app.conf.beat_scheduler = f"{__name__}:ReadyScheduler"


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
