"""The Celery application. Task modules are imported by worker processes only."""

from __future__ import annotations

from celery import Celery

import celeryconfig
from tickfleet.config.settings import Settings, get_settings
from workers.presence import StreamWorkerPresence

TASK_MODULES = [
    "workers.signals",
    "workers.reload",
    "workers.instruments",
    "workers.streams",
    "workers.maintenance",
]


def make_app(settings: Settings | None = None, include: list[str] | None = None) -> Celery:
    """A configured app; settings are read when Celery first needs its configuration."""
    app = Celery("tickfleet", include=include or [], set_as_current=settings is None)
    app.config_from_object(celeryconfig)
    app.add_defaults(lambda: celeryconfig.from_settings(settings or get_settings()))
    app.steps["worker"].add(StreamWorkerPresence)
    return app


app = make_app(include=TASK_MODULES)
