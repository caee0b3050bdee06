"""Make sure a stream runs for every stream name that should: start what has no lease,
and give each running stream a hot standby on another worker where one has room.

Used by the reload (right after a new assignment) and by the watchdog beat task, only
where a live stream worker has a free slot (``tickfleet.control.presence``). A
"starting" marker with a grace TTL stops both from enqueueing the same start twice while
the first one waits for a free worker; if that start is lost, the marker lapses and the
next pass enqueues again. Duplicates that slip through are harmless: the second stream
task cannot take the lease and stands by, or exits when the stream has a standby.

A standby start is the same stream task, sent to one worker's own queue: the live worker
with the most free slots other than the owner's (on the shared queue, the owner's worker,
idle slots waiting, took five starts in a row). The task finds the lease held and stands
by (``tickfleet.stream.standby``). Owners come first: when streams without a lease find
no free slot, standbys are asked to stand down and free theirs for the next pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol

import redis

from tickfleet.control.presence import Capacity, placements
from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import STAND_DOWN
from tickfleet.metrics.catalog import Metrics

log = logging.getLogger("tickfleet.launcher")


class StreamStarter(Protocol):
    """Enqueues one stream task (a Celery task on the stream queue in the fleet), or on
    one worker's own queue when ``worker`` names it (a standby's start)."""

    def start(self, stream: str, worker: str | None = None) -> None: ...


class StreamLauncher:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        starter: StreamStarter,
        metrics: Metrics,
        grace_seconds: float,
        room: Callable[[], Capacity],
        *,
        standbys: bool = True,
    ) -> None:
        self._client = client
        self._room = room
        self._standbys = standbys
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
        run would wait in the queue for nobody (``/health`` says why the rest wait). Slots
        left over go to standbys of the streams that have none.
        """
        names = sorted(set(streams))
        missing = self.missing(names)
        room = self._room()
        allowed = missing[: room.free_slots] if room.live else []
        if len(allowed) < len(missing):
            log.warning("%s", room.problem(len(missing) - len(allowed)))
            self._stand_down(names, len(missing) - len(allowed))
        started = [name for name in allowed if self._launch(name)]
        for name in started:
            self._metrics.inc("stream_restarts_total", labels={"stream": name})
            log.info("stream %s has no lease: start enqueued", name)
        if self._standbys and room.free_slots > len(allowed):
            self._add_standbys([n for n in names if n not in missing], room, len(allowed))
        return started

    def _add_standbys(self, running: list[str], room: Capacity, used: int) -> None:
        """A standby start for each running stream that has none, where another worker
        than its owner's has a free slot."""
        budget = room.free_slots - used
        for name, placed in placements(self._client, self._keys, running).items():
            if budget <= 0:
                return
            if placed.owner_host is None or placed.standby_host or placed.starting:
                continue
            worker = room.roomiest_besides(placed.owner_host)
            if worker is not None and self._launch(name, worker):
                budget -= 1
                log.info("stream %s has no standby: start enqueued on %s", name, worker)

    def _stand_down(self, streams: list[str], count: int) -> None:
        """Ask up to ``count`` standbys to end: their slots are for streams without one."""
        for name, placed in placements(self._client, self._keys, streams).items():
            if count <= 0:
                return
            if placed.standby_host is not None:
                self._client.set(self._keys.stream_standby(name), STAND_DOWN, xx=True, px=5000)
                log.info("stream %s: standby on %s asked to stand down", name, placed.standby_host)
                count -= 1

    def _launch(self, name: str, worker: str | None = None) -> bool:
        """Enqueue one stream task unless one is on its way; True when enqueued."""
        starting = self._keys.stream_starting(name)
        if not self._client.set(starting, "1", nx=True, px=self._grace_ms):
            return False
        try:
            self._starter.start(name, worker)
        except Exception:
            self._client.delete(starting)
            raise
        return True
