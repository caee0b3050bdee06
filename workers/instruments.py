"""Instrument refresh task: daily before the open, and on demand from the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tickfleet.instruments import choose_source, refresh_instruments
from tickfleet.keyspace.tasks import TASK_REFRESH_INSTRUMENTS
from workers.app import app
from workers.runtime import reload_scheduler, services


@app.task(name=TASK_REFRESH_INSTRUMENTS, ignore_result=True)
def refresh_instruments_task() -> dict[str, Any]:
    """Reload the registry, then request a reload so unlisted or expired tokens drop out."""
    svc = services()
    now = datetime.fromtimestamp(svc.clock.time(), ZoneInfo(svc.settings.market_timezone))
    summary = refresh_instruments(
        svc.registry, choose_source(svc.settings, svc.kite_credentials()), now.date(), now
    )
    svc.coordinator(reload_scheduler()).request("instrument refresh")
    return {
        "added": summary.added,
        "updated": summary.updated,
        "removed": summary.removed,
        "total": summary.total,
    }
