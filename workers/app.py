"""The Celery application. Task modules are imported by worker processes only."""

from __future__ import annotations

from celery import Celery

app = Celery(
    "tickfleet",
    include=[
        "workers.signals",
        "workers.reload",
        "workers.instruments",
        "workers.streams",
        "workers.maintenance",
    ],
)
app.config_from_object("celeryconfig")
