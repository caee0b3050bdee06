"""Reload tasks: thin adapters around ``tickfleet.control.reload.ReloadCoordinator``."""

from __future__ import annotations

from typing import Any

from tickfleet.keyspace.tasks import TASK_ENSURE_RELOAD, TASK_RELOAD
from workers.app import app
from workers.runtime import reload_scheduler, services, stream_starter


@app.task(name=TASK_RELOAD, ignore_result=True)
def reload_subscriptions() -> dict[str, Any]:
    """The scheduled, debounced, singleton reload (see the coordinator for the rules)."""
    svc = services()
    outcome = svc.coordinator(reload_scheduler()).run_scheduled(svc.rebalancer(stream_starter()))
    return {"kind": outcome.kind, "generation": outcome.generation, "error": outcome.error}


@app.task(name=TASK_ENSURE_RELOAD, ignore_result=True)
def ensure_reload_scheduled() -> str:
    """Beat backstop: reschedule lost reload tasks, and reload changes never requested."""
    svc = services()
    coordinator = svc.coordinator(reload_scheduler())
    if coordinator.ensure_scheduled():
        return "rescheduled"
    if svc.rebalancer(stream_starter()).in_sync():
        return "in sync"
    coordinator.request("subscriptions differ from the assignment")
    return "requested"
