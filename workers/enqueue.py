"""Celery implementations of the core's "enqueue this" protocols, shared by API and workers.

Queues come from ``task_routes`` in celeryconfig, the one place that maps tasks to queues.
"""

from __future__ import annotations

from celery import Celery

from tickfleet.keyspace import keys as names


class CeleryReloadScheduler:
    """Schedules ``reload_subscriptions`` on the control queue after a countdown."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def schedule(self, countdown: float) -> None:
        self._app.send_task(names.TASK_RELOAD, countdown=max(0.0, countdown))


class CeleryStreamStarter:
    """Enqueues a stream task; a start nobody picks up in time is discarded by Celery."""

    def __init__(self, app: Celery, expires_seconds: float) -> None:
        self._app = app
        self._expires = expires_seconds

    def start(self, stream: str) -> None:
        account = names.stream_account(stream)
        if account is None:
            self._app.send_task(names.TASK_STREAM_UNDERLYING, expires=self._expires)
        else:
            self._app.send_task(names.TASK_STREAM_ACCOUNT, args=[account], expires=self._expires)
