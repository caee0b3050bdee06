"""Celery configuration of the fleet: queues, routes, beat schedule, broker options.

Configuration only. The static part is plain module attributes; the part that depends
on settings (broker URL, key prefix, intervals, timezone) comes from ``from_settings``,
which the app applies lazily, when it is first configured inside a worker, beat, Flower
or a producer, so importing this module reads no environment.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from celery.schedules import crontab
from kombu.entity import Queue

from tickfleet.config.settings import Settings
from tickfleet.keyspace import tasks
from tickfleet.keyspace.keys import Keys

task_ignore_result = True
broker_connection_retry_on_startup = True

_TRANSPORT_OPTIONS = {
    # Unacknowledged messages are redelivered after this long. It must exceed the
    # longest countdown we schedule (reload debounce/max-wait, a few seconds), or a
    # delayed reload would run twice. Stream tasks are acknowledged early, so they are
    # never redelivered at all: their exclusivity comes from a Redis lease, and a lost
    # stream is restarted by the watchdog within seconds, not by the broker in an hour.
    "visibility_timeout": 3600,
    "socket_timeout": 10,
    "socket_connect_timeout": 5,
    "retry_on_timeout": True,
    "health_check_interval": 30,
}

task_queues = (
    Queue(tasks.QUEUE_CONTROL),
    Queue(tasks.QUEUE_STREAM),
    Queue(tasks.QUEUE_MAINTENANCE),
)
# Each worker also consumes its own queue ("<hostname>.dq2"): a stream's standby is
# started on a chosen worker, never on its owner's (tickfleet.control.launcher).
worker_direct = True
task_default_queue = tasks.QUEUE_CONTROL
task_routes = {
    tasks.TASK_RELOAD: {"queue": tasks.QUEUE_CONTROL},
    tasks.TASK_ENSURE_RELOAD: {"queue": tasks.QUEUE_CONTROL},
    tasks.TASK_REFRESH_INSTRUMENTS: {"queue": tasks.QUEUE_CONTROL},
    tasks.TASK_STREAM_ACCOUNT: {"queue": tasks.QUEUE_STREAM},
    tasks.TASK_STREAM_UNDERLYING: {"queue": tasks.QUEUE_STREAM},
    tasks.TASK_WATCHDOG: {"queue": tasks.QUEUE_MAINTENANCE},
    tasks.TASK_EVICT_EXPIRED: {"queue": tasks.QUEUE_MAINTENANCE},
    tasks.TASK_MOVE_BARS: {"queue": tasks.QUEUE_MAINTENANCE},
    tasks.TASK_KEEP_ARCHIVE: {"queue": tasks.QUEUE_MAINTENANCE},
}

# Short control tasks: acknowledge after they finish and requeue them when their
# process dies, so a crashed reload is retried. Stream tasks override this per task
# (acks_late=False): they run for hours and must never be redelivered by the broker.
task_acks_late = True
task_reject_on_worker_lost = True
# One message per process at a time: a long stream task must not sit on messages that
# another, idle worker could start (stream workers also run with --disable-prefetch).
worker_prefetch_multiplier = 1

task_serializer = "json"
accept_content = ["json"]
enable_utc = True

# Flower and /health see task state and failures.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True

# Beat: celery-redbeat keeps the schedule in Redis (each entry's last run included) and
# sends only while it holds a Redis lock, so any number of beats never double-fire and a
# new leader continues the schedule where the old one left it, mid-period included. The
# leader extends the lock on every tick (at most beat_max_loop_interval apart); a standby
# blocks on the lock, polling every beat_max_loop_interval, so a killed leader is replaced
# within the lock timeout + 1 s. ``workers.beat`` keeps a beat alive through Redis outages
# and restarts (RedBeat's own would exit): it stands by until it can take the lock again.
beat_scheduler = "workers.beat:FleetBeatScheduler"
beat_max_loop_interval = 1.0
redbeat_lock_timeout = 5


def from_settings(settings: Settings) -> dict[str, Any]:
    """The settings-dependent part of the configuration."""
    prefix = {"global_keyprefix": settings.key_prefix + "celery:"}
    return {
        "broker_url": settings.redis_url,
        "result_backend": settings.redis_url,
        # Every Celery key sits under the fleet's prefix, so fleets can share one Redis.
        "broker_transport_options": {**_TRANSPORT_OPTIONS, **prefix},
        "result_backend_transport_options": prefix,
        "timezone": settings.market_timezone,
        "beat_schedule": _beat_schedule(settings),
        **_redbeat(settings),
    }


def _redbeat(settings: Settings) -> dict[str, Any]:
    """RedBeat's keys under the fleet's prefix, and its client as patient as the fleet's:
    a tick never hangs on a dead connection (the scheduler tries again next tick)."""
    keys = Keys(settings.key_prefix)
    timeout = settings.redis_socket_timeout
    url, password = _without_password(settings.redis_url)
    return {
        "redbeat_redis_url": url,
        "redbeat_key_prefix": keys.beat_entries,
        "redbeat_lock_key": keys.beat_leader,
        "redbeat_redis_options": {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            **({"password": password} if password else {}),
        },
    }


def _without_password(url: str) -> tuple[str, str | None]:
    """``url`` without its password, and the password. ``celery inspect conf`` and Flower
    show the configuration, masking the broker's and backend's URLs and keys named like
    a password, never a password inside ``redbeat_redis_url``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url, None
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user.partition(':')[0]}@{host}" if parts.username else host
    return urlunsplit(parts._replace(netloc=netloc)), unquote(parts.password)


def producer_options(settings: Settings) -> dict[str, Any]:
    """Publish bounds for a process that only sends tasks (the API), on top of the rest.

    With the workers' options a publish to a Redis behind a dead network took 181 s
    (a 10 s socket timeout, retried by redis-py on timeout, retried again by Celery's
    publish policy), and one to a stopped Redis 40 s. With these, every socket wait is
    ``TICKFLEET_REDIS_SOCKET_TIMEOUT``, redis-py does not retry a timeout and Celery
    retries a publish once (a pooled connection that broke when Redis restarted is
    replaced): 3.0 s and 1.0 s at a 1 s timeout.
    """
    timeout = settings.redis_socket_timeout
    transport = from_settings(settings)["broker_transport_options"]
    return {
        "broker_transport_options": {
            **transport,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry_on_timeout": False,
        },
        "broker_connection_timeout": timeout,
        "task_publish_retry_policy": {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.1,
            "interval_max": 0.1,
        },
    }


def _minute_after(at: time) -> time:
    return (datetime.combine(date(2000, 1, 1), at) + timedelta(minutes=1)).time()


def _beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    refresh_at = settings.instrument_refresh_time
    after_close = _minute_after(settings.market_close)
    watchdog = settings.watchdog_interval_seconds
    sweep = settings.mock_expiry_sweep_seconds
    return {
        "watchdog": {
            "task": tasks.TASK_WATCHDOG,
            "schedule": timedelta(seconds=watchdog),
            "options": {"expires": watchdog * 2},
        },
        "evict-expired": {
            "task": tasks.TASK_EVICT_EXPIRED,
            "schedule": timedelta(seconds=sweep),
            "options": {"expires": sweep},
        },
        # Contracts expire at the close: deactivate them right after it, not up to a
        # sweep period later.
        "evict-after-close": {
            "task": tasks.TASK_EVICT_EXPIRED,
            "schedule": crontab(hour=str(after_close.hour), minute=str(after_close.minute)),
            "options": {"expires": sweep},
        },
        "move-bars": {
            "task": tasks.TASK_MOVE_BARS,
            "schedule": timedelta(seconds=settings.history_bar_move_seconds),
            "options": {"expires": settings.history_bar_move_seconds * 2},
        },
        # The tick archive's past days compacted and its retention applied.
        "keep-archive": {
            "task": tasks.TASK_KEEP_ARCHIVE,
            "schedule": timedelta(seconds=settings.archive_compact_seconds),
            "options": {"expires": settings.archive_compact_seconds},
        },
        "ensure-reload": {
            "task": tasks.TASK_ENSURE_RELOAD,
            "schedule": timedelta(seconds=30),
            "options": {"expires": 30},
        },
        "refresh-instruments": {
            "task": tasks.TASK_REFRESH_INSTRUMENTS,
            "schedule": crontab(hour=str(refresh_at.hour), minute=str(refresh_at.minute)),
            "options": {"expires": 3600},
        },
    }
