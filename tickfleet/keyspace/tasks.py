"""Celery's queue and task names, shared by producers (which enqueue by name) and workers
(which register the tasks), so neither has to import the other. The task names are what
a running fleet's broker and beat schedule hold: renaming one strands queued work.
"""

from __future__ import annotations

# --- Celery queues --------------------------------------------------------------------
QUEUE_CONTROL = "control"
QUEUE_STREAM = "stream"
QUEUE_MAINTENANCE = "maintenance"

# --- Celery task names -----------------------------------------------------------------
TASK_RELOAD = "tickfleet.reload_subscriptions"
TASK_ENSURE_RELOAD = "tickfleet.ensure_reload_scheduled"
TASK_REFRESH_INSTRUMENTS = "tickfleet.refresh_instruments"
TASK_STREAM_ACCOUNT = "tickfleet.stream_account"
TASK_STREAM_UNDERLYING = "tickfleet.stream_underlying"
TASK_WATCHDOG = "tickfleet.watchdog"
TASK_EVICT_EXPIRED = "tickfleet.evict_expired"
TASK_MOVE_BARS = "tickfleet.move_bars"
TASK_KEEP_ARCHIVE = "tickfleet.keep_archive"
