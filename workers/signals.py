"""Celery signal handlers: fresh resources per process, and no silent task failure.

A whole task that dies (exception, revoked while running, killed child) is logged with
its context, counted in ``task_failures_total{task}`` and recorded in the fleet's failure
log that ``/health`` shows; Flower shows it too, from Celery's own task events.
"""

from __future__ import annotations

import logging
import traceback as tb
from typing import Any

from celery.signals import (
    task_failure,
    task_revoked,
    worker_process_init,
    worker_process_shutdown,
)

from tickfleet.supervision.failures import RedisFailureLog, TaskFailure
from workers import runtime

log = logging.getLogger("tickfleet.workers")


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    # Connections and engines inherited from the parent must not be shared by children.
    runtime.services.cache_clear()


@worker_process_shutdown.connect
def _process_exit(**_: Any) -> None:
    runtime.reset()


def _record(task_name: str, context: dict[str, str], exc: BaseException | None, text: str) -> None:
    svc = runtime.services()
    failure = TaskFailure(
        task=task_name,
        context=context,
        exc_type=type(exc).__name__ if exc else "Revoked",
        message=str(exc) if exc else text,
        traceback=text,
        at=svc.clock.time(),
        restarts=0,
    )
    svc.metrics.inc("task_failures_total", labels={"task": task_name})
    RedisFailureLog(svc.redis, svc.keys.task_failures).record(failure)


@task_failure.connect
def _task_failed(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    einfo: Any = None,
    **_: Any,
) -> None:
    name = getattr(sender, "name", "unknown")
    text = str(einfo) if einfo else "".join(tb.format_exception(exception)) if exception else ""
    log.error("task %s[%s] failed (args=%r): %r", name, task_id, args, exception)
    _record(name, {"task_id": str(task_id), "args": repr(args)[:200]}, exception, text)


@task_revoked.connect
def _task_revoked(
    request: Any = None,
    terminated: bool = False,
    expired: bool = False,
    signum: Any = None,
    **_: Any,
) -> None:
    name = getattr(request, "task", None) or getattr(request, "name", "unknown")
    if expired and not terminated:
        # A stream start nobody picked up before it expired: by design, not a failure.
        log.info("task %s[%s] expired before it started", name, getattr(request, "id", "?"))
        return
    log.error(
        "task %s[%s] revoked (terminated=%s, signal=%s)",
        name,
        getattr(request, "id", "?"),
        terminated,
        signum,
    )
    _record(
        str(name),
        {"task_id": str(getattr(request, "id", "?"))},
        None,
        f"revoked terminated={terminated} signal={signum}",
    )
