"""Maintenance tasks run by beat: the stream watchdog and expired-contract eviction."""

from __future__ import annotations

from tickfleet import names
from tickfleet.watchdog import watch
from workers.app import app
from workers.runtime import reload_scheduler, services, stream_starter


@app.task(name=names.TASK_WATCHDOG, ignore_result=True)
def watchdog() -> list[str]:
    """Start every stream that should run and holds no lease (killed worker: failover)."""
    svc = services()
    reloads = svc.coordinator(reload_scheduler())
    return watch(svc.assignments, svc.subscriptions, svc.launcher(stream_starter()), reloads)


@app.task(name=names.TASK_EVICT_EXPIRED, ignore_result=True)
def evict_expired() -> int:
    """Deactivate expired subscriptions, tell streams to forget them, then reassign."""
    svc = services()
    evicted = svc.evictor().run()
    if evicted:
        svc.coordinator(reload_scheduler()).request(f"evicted {len(evicted)} expired")
    return len(evicted)
