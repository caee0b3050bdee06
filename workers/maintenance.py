"""Maintenance tasks run by beat: the stream watchdog, expired-contract eviction, moving
the streams' bars to SQL, and the tick archive's compaction and retention."""

from __future__ import annotations

from tickfleet.archive.upkeep import keep_archive as keep_archive_files
from tickfleet.control.watchdog import watch
from tickfleet.history.bar_store import BarStore, keep_bars
from tickfleet.keyspace.tasks import (
    TASK_EVICT_EXPIRED,
    TASK_KEEP_ARCHIVE,
    TASK_MOVE_BARS,
    TASK_WATCHDOG,
)
from workers.app import app
from workers.runtime import reload_scheduler, services, stream_starter


@app.task(name=TASK_WATCHDOG, ignore_result=True)
def watchdog() -> list[str]:
    """Start every stream that should run and holds no lease (killed worker: failover)."""
    svc = services()
    reloads = svc.coordinator(reload_scheduler())
    launcher = svc.launcher(stream_starter())
    return watch(svc.assignments, svc.subscriptions, launcher, reloads, svc.configured)


@app.task(name=TASK_EVICT_EXPIRED, ignore_result=True)
def evict_expired() -> int:
    """Deactivate expired subscriptions, tell streams to forget them, then reassign."""
    svc = services()
    evicted = svc.evictor().run()
    if evicted:
        svc.coordinator(reload_scheduler()).request(f"evicted {len(evicted)} expired")
    return len(evicted)


@app.task(name=TASK_MOVE_BARS, ignore_result=True)
def move_bars() -> int:
    """The streams' bars from Redis into SQL, and bars past the retention pruned."""
    svc = services()
    settings = svc.settings
    store = BarStore(svc.sessions)
    return keep_bars(svc.redis, svc.keys, store, svc.clock.time(), settings.history_retention_days)


@app.task(name=TASK_KEEP_ARCHIVE, ignore_result=True)
def keep_archive() -> int:
    """Past days of the tick archive compacted, days past the retention removed."""
    svc = services()
    settings = svc.settings
    if not settings.archive:
        return 0
    report = keep_archive_files(
        settings.effective_archive_dir,
        svc.hours.at(svc.clock.time()).date(),
        settings.archive_retention_days,
        settings.archive_compact_zstd_level,
        svc.metrics,
    )
    return report.compacted_parts
