"""A worker bootstep: a stream worker announces itself, beats, and hands its streams over.

Runs in the worker's main process, on Celery's own timer. On start it records itself
(hostname, pid, pool concurrency) for the watchdog and ``/health``; every two seconds it
beats; on stop it leaves the stream queue, tells its streams to end and release their
leases, then records that it left. Stopping is the same for every way a worker stops: a
signal, ``celery control shutdown`` or Flower's shutdown button, so another worker takes
the streams over at the watchdog's next pass instead of after the leases lapse, and a
remote shutdown does not leave the worker waiting forever for stream tasks that never
end by themselves.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import redis
from celery import bootsteps
from celery.utils.nodenames import worker_direct

from tickfleet.assignment import channel as control
from tickfleet.config.settings import get_settings
from tickfleet.control.presence import HEARTBEAT_SECONDS, Presence, WorkerRecord
from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.tasks import QUEUE_STREAM
from tickfleet.runtime.clock import Clock, clock_from_settings
from tickfleet.runtime.connections import fail_fast_client

log = logging.getLogger("tickfleet.workers")


def _stop_taking_streams(worker: Any) -> None:
    """Leave the stream queue (and this worker's own, where standbys are started) before
    the streams hand over, so this worker, on its way out, cannot take the start meant
    for the worker that takes over (and requeue it seconds later when its pool closes)."""
    consumer = getattr(worker, "consumer", None)
    if consumer is None or getattr(consumer, "task_consumer", None) is None:
        return
    try:
        consumer.cancel_task_queue(QUEUE_STREAM)
        consumer.cancel_task_queue(worker_direct(worker.hostname).name)
    except Exception as exc:  # the broker may be gone already; the lease covers it
        log.warning("stream worker presence: leaving the stream queue failed: %s", exc)


class StreamWorkerPresence(bootsteps.StartStopStep):  # type: ignore[misc]
    requires = ("celery.worker.components:Timer", "celery.worker.components:Pool")

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self._record: WorkerRecord | None = None
        self._presence: Presence | None = None
        self._client: redis.Redis | None = None
        self._timer: Any = None
        self._clock: Clock | None = None

    def start(self, worker: Any) -> None:
        if QUEUE_STREAM not in worker.app.amqp.queues.consume_from:
            return
        settings = get_settings()
        self._client = fail_fast_client(settings.redis_url, settings.redis_socket_timeout)
        self._presence = Presence(self._client, Keys(settings.key_prefix))
        self._clock = clock_from_settings(settings)
        now = self._clock.time()
        self._record = WorkerRecord(
            worker.hostname, os.getpid(), int(worker.concurrency), started_at=now, seen_at=now
        )
        self._safely("announce", self._presence.announce, self._record)
        self._timer = worker.timer.call_repeatedly(HEARTBEAT_SECONDS, self._beat)

    def stop(self, worker: Any) -> None:
        if self._record is None or self._presence is None or self._client is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        _stop_taking_streams(worker)
        keys = Keys(get_settings().key_prefix)
        shutdown = control.Shutdown(hostname=worker.hostname)
        self._safely("hand over", control.publish, self._client, keys.control_channel, shutdown)
        self._safely("leave", self._presence.leave, self._record, self._now(), "shut down")
        self._client.close()
        self._record = None

    def _beat(self) -> None:
        if self._record is not None and self._presence is not None:
            beaten = self._safely("beat", self._presence.beat, self._record, self._now())
            self._record = beaten or self._record

    def _now(self) -> float:
        assert self._clock is not None, "started"
        return self._clock.time()

    def _safely(self, what: str, call: Any, *args: Any) -> Any:
        """Redis may be down; the leases and the silence rule cover it, so only log."""
        try:
            return call(*args)
        except redis.RedisError as exc:
            log.warning("stream worker presence: %s failed: %s", what, exc)
            return None
