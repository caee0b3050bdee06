"""Make sure a stream runs for every stream name that should: start what has no lease.

Used by the reload (right after a new assignment) and by the watchdog beat task, only
where a live stream worker has a free slot (``tickfleet.control.presence``). A
"starting" marker with a grace TTL stops both from enqueueing the same start twice while
the first one waits for a free worker; if that start is lost, the marker lapses and the
next pass enqueues again. Duplicates that slip through are harmless: the second stream
task cannot take the lease and exits at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

import redis

from tickfleet.control.presence import Capacity
from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.catalog import Metrics

log = logging.getLogger("tickfleet.launcher")


class StreamStarter(Protocol):
    """Enqueues one stream task (a Celery task on the stream queue in the fleet)."""

    def start(self, stream: str) -> None: ...


class StreamLauncher:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        starter: StreamStarter,
        metrics: Metrics,
        grace_seconds: float,
        room: Callable[[], Capacity],
    ) -> None:
        self._client = client
        self._room = room
        self._keys = keys
        self._starter = starter
        self._metrics = metrics
        self._grace_ms = int(grace_seconds * 1000)

    def missing(self, streams: Iterable[str]) -> list[str]:
        """Streams with neither a lease nor a pending start."""
        names = sorted(set(streams))
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.exists(self._keys.stream_lease(name), self._keys.stream_starting(name))
        return [n for n, found in zip(names, pipe.execute(), strict=True) if not found]

    def ensure(self, streams: Iterable[str]) -> list[str]:
        """Start every stream that is not running and has room; returns the ones started.

        Only as many as the live stream workers have free slots for: a start nobody can
        run would wait in the queue for nobody (``/health`` says why the rest wait).
        """
        missing = self.missing(streams)
        if not missing:
            return []
        room = self._room()
        allowed = missing[: room.free_slots] if room.live else []
        if len(allowed) < len(missing):
            log.warning("%s", room.problem(len(missing) - len(allowed)))
        started = []
        for name in allowed:
            if not self._client.set(
                self._keys.stream_starting(name), "1", nx=True, px=self._grace_ms
            ):
                continue
            try:
                self._starter.start(name)
            except Exception:
                self._client.delete(self._keys.stream_starting(name))
                raise
            self._metrics.inc("stream_restarts_total", labels={"stream": name})
            log.info("stream %s has no lease: start enqueued", name)
            started.append(name)
        return started
