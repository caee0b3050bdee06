"""A beat scheduler that fires only while it holds the fleet's beat-leader lease.

Run two beats for availability: the standby ticks idly until the leader's lease lapses
(leader killed), then takes over within one lease TTL. Two beats never both fire,
because only the holder of the Redis lease sends anything.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import redis
from celery.beat import Scheduler

from tickfleet.connections import patient_client
from tickfleet.lease import Lease, new_owner
from tickfleet.names import Keys
from tickfleet.settings import get_settings

log = logging.getLogger("tickfleet.beat")

LEADER_TTL_SECONDS = 10.0


class LeaderScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = get_settings()
        self._lease = Lease(
            patient_client(settings.redis_url, settings.redis_socket_timeout),
            Keys(settings.key_prefix).beat_leader,
            LEADER_TTL_SECONDS,
            owner=new_owner("beat"),
        )
        self._leader = False
        super().__init__(*args, **kwargs)

    def _still_leader(self) -> bool:
        try:
            leader = self._lease.renew() if self._leader else self._lease.acquire()
        except redis.RedisError as exc:
            log.warning("beat leader lease unavailable: %s", exc)
            leader = False
        if leader != self._leader:
            log.info(
                "beat %s the leader lease (%s)", "took" if leader else "lost", self._lease.owner
            )
        self._leader = leader
        return leader

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._still_leader():
            return min(float(self.max_interval), LEADER_TTL_SECONDS / 3)
        return min(float(super().tick(*args, **kwargs)), LEADER_TTL_SECONDS / 3)

    def close(self) -> None:
        if self._leader:
            with contextlib.suppress(redis.RedisError):
                self._lease.release()
        super().close()
