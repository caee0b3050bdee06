"""The fleet's beat scheduler: celery-redbeat, kept alive through Redis outages.

RedBeat keeps the schedule and each entry's last run in Redis and sends only while it
holds a Redis lock, so two beats never double-fire and a new leader continues the
schedule mid-period where the old one left it. As shipped, though, a tick whose lock
extension fails, because Redis was unreachable for a moment or restarted empty (which
deletes the lock and the schedule with it), raises out of beat's loop and the process
exits: measured in the beat log of ``tests/integration/stream/test_redis_restart.py``.

Here such a tick sends nothing, and a beat that lost the lock stands by: every tick (at
most ``beat_max_loop_interval`` apart) it tries to take the lock without waiting, and
once it holds it re-installs the static schedule, keeping every last run Redis still has.
Deciding what is due and sending it stay RedBeat's.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from redbeat.schedulers import (  # type: ignore[import-untyped]
    LUA_EXTEND_TO_SCRIPT,
    RedBeatScheduler,
    get_redis,
)
from redis.exceptions import LockError
from redis.lock import Lock

log = logging.getLogger("tickfleet.beat")


class FleetBeatScheduler(RedBeatScheduler):  # type: ignore[misc]
    lock: Lock | None = None
    _standby = False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock_key and not self._leading():
            return float(self.max_interval)
        try:
            return float(super().tick(*args, **kwargs))
        except LockError as exc:
            log.warning("beat: lost the lock %s (%s); standing by", self.lock_key, exc)
            self._standby = True
        except redis.RedisError as exc:
            log.warning("beat: Redis unavailable, nothing sent this tick: %s", exc)
        return float(self.max_interval)

    def _leading(self) -> bool:
        """Whether this beat holds the lock, taking it when free (never waiting for it)."""
        if self.lock is not None and not self._standby:
            return True
        try:
            lock = self.lock or self._new_lock()
            if not lock.acquire(blocking=False):
                return False
            self.lock, self._standby = lock, False
            log.info("beat: took the lock %s", self.lock_key)
            self.setup_schedule()
        except redis.RedisError as exc:
            log.warning("beat: standing by, Redis unavailable: %s", exc)
            return False
        return True

    def _new_lock(self) -> Lock:
        """The lock as RedBeat's start-up makes it (its start-up failed: Redis was down)."""
        client = get_redis(self.app)
        lock: Lock = client.lock(self.lock_key, timeout=self.lock_timeout, sleep=self.max_interval)
        lock.lua_extend = client.register_script(LUA_EXTEND_TO_SCRIPT)
        return lock

    def close(self) -> None:
        """Release the lock if Redis answers; otherwise it lapses within its timeout."""
        try:
            super().close()
        except redis.RedisError as exc:
            log.warning("beat: lock not released, it lapses instead: %s", exc)
            self.lock = None
