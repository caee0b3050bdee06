"""Celery implementations of the core's "enqueue this" protocols, shared by API and workers.

Queues come from ``task_routes`` in celeryconfig, the one place that maps tasks to queues.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.utils.nodenames import worker_direct

from tickfleet.keyspace.streams import stream_account, stream_underlying
from tickfleet.keyspace.tasks import TASK_RELOAD, TASK_STREAM_ACCOUNT, TASK_STREAM_UNDERLYING


class CeleryReloadScheduler:
    """Schedules ``reload_subscriptions`` on the control queue after a countdown."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def schedule(self, countdown: float) -> None:
        self._app.send_task(TASK_RELOAD, countdown=max(0.0, countdown))


class CeleryStreamStarter:
    """Enqueues a stream task; a start nobody picks up in time is discarded by Celery."""

    def __init__(self, app: Celery, expires_seconds: float) -> None:
        self._app = app
        self._expires = expires_seconds

    def start(self, stream: str, worker: str | None = None) -> None:
        """On the stream queue, or on ``worker``'s own queue (``worker_direct``)."""
        account, underlying = stream_account(stream), stream_underlying(stream)
        route: dict[str, Any] = {"queue": worker_direct(worker)} if worker else {}
        if account is not None:
            args = [account]
        elif underlying is not None:
            args = [underlying]
        else:
            raise ValueError(f"no stream task runs a stream named {stream!r}")
        task = TASK_STREAM_ACCOUNT if account is not None else TASK_STREAM_UNDERLYING
        self._app.send_task(task, args=args, expires=self._expires, **route)
