"""Maintenance tasks run by beat: the stream watchdog and expired-contract eviction."""

from __future__ import annotations

from tickfleet import names
from workers.app import app
from workers.runtime import services, stream_starter


@app.task(name=names.TASK_WATCHDOG, ignore_result=True)
def watchdog() -> list[str]:
    """Start every stream that should run and holds no lease (killed worker: failover)."""
    svc = services()
    return svc.launcher(stream_starter()).ensure(svc.assignments.load().streams())
