"""Leases: a Redis key owned by one holder for a TTL, renewed while the holder lives.

One mechanism serves the reload singleton lock (``Lease``, for synchronous code) and the
per-stream leases (``AsyncLease``, on a stream's event loop).
The owner token is random per holder, so only the holder can renew or release; renewal
and release are compare-and-set scripts, never a read followed by a write.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

log = logging.getLogger("tickfleet.lease")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# Renew, or take the key back if it is gone (an emptied or restarted Redis). Absent
# means nobody holds it, so taking it is what any other candidate would do; the holder
# stopped publishing as soon as it could no longer be sure the lease was its own.
_KEEP = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

# Take the lease if nobody holds it, and hand the new holder the next fencing epoch.
# The epoch never goes back: at least the previous one plus one, and at least Redis's
# clock in microseconds (below 2^53, exact in Lua), so a fleet Redis restarted empty still
# hands out epochs above every fence the publish Redis kept (the fence refuses anything
# older). Milliseconds were not enough: an epoch drawn within the millisecond after the
# counter vanished repeated the last one, and the fence lets an equal epoch through.
_ACQUIRE = """
local lease_key, epoch_key = KEYS[1], KEYS[2]
local owner, ttl_ms = ARGV[1], ARGV[2]
if not redis.call('SET', lease_key, owner, 'NX', 'PX', ttl_ms) then
  return 0
end
local now = redis.call('TIME')
local floor = tonumber(now[1]) * 1000000 + tonumber(now[2])
local epoch = redis.call('INCR', epoch_key)
if epoch < floor then
  epoch = floor
  redis.call('SET', epoch_key, epoch)
end
return epoch
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def new_owner(label: str = "") -> str:
    """An owner token that also tells an operator where the holder runs."""
    where = f"{socket.gethostname()}:{os.getpid()}"
    return f"{label + '@' if label else ''}{where}:{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    owner: str | None
    ttl_seconds: float


class Lease:
    """A renewable, owner-checked Redis lease for synchronous code (the reload lock)."""

    def __init__(self, client: redis.Redis, key: str, ttl_seconds: float, owner: str | None = None):
        if ttl_seconds <= 0:
            raise ValueError("lease TTL must be positive")
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.owner = owner or new_owner()
        self._renew: Any = client.register_script(_RENEW)
        self._release: Any = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; True when this holder now owns it."""
        return bool(self.client.set(self.key, self.owner, nx=True, px=self.ttl_ms))

    def renew(self) -> bool:
        """Extend the TTL; False means the lease was lost (expired or taken)."""
        return bool(self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    def try_renew(self) -> bool | None:
        """``renew``, with a Redis error reported as None (unknown) instead of raised."""
        try:
            return self.renew()
        except redis.RedisError as exc:
            log.warning("lease %s renewal failed: %s", self.key, exc)
            return None

    def release(self) -> bool:
        """Give the lease up if still ours; a lapsed lease is left to its new owner."""
        return bool(self._release(keys=[self.key], args=[self.owner]))


class AsyncLease:
    """A stream's lease on its event loop: acquire, keep (renew or retake), release.

    Every acquisition also draws a fencing epoch from ``epoch_key``: a later holder's
    epoch is always greater, which lets the publisher refuse a stale holder's batches.
    """

    def __init__(
        self, client: aioredis.Redis, key: str, ttl_seconds: float, owner: str, epoch_key: str
    ):
        if ttl_seconds <= 0:
            raise ValueError("lease TTL must be positive")
        self.client = client
        self.key = key
        self.epoch_key = epoch_key
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self.owner = owner
        self._acquire: Any = client.register_script(_ACQUIRE)
        self._keep: Any = client.register_script(_KEEP)
        self._release: Any = client.register_script(_RELEASE)

    async def acquire(self) -> int:
        """Take the lease if nobody holds it: this holder's epoch, or 0 when it is held."""
        keys = [self.key, self.epoch_key]
        return int(await self._acquire(keys=keys, args=[self.owner, self.ttl_ms]))

    async def try_keep(self) -> bool | None:
        """Renew, or retake the lease if its key vanished; False: another holder has it.

        A Redis error is reported as None (unknown): the holder decides from its TTL.
        """
        try:
            kept = int(await self._keep(keys=[self.key], args=[self.owner, self.ttl_ms]))
        except (redis.RedisError, OSError) as exc:
            log.warning("lease %s renewal failed: %s", self.key, exc)
            return None
        if kept == 2:
            log.warning("lease %s was gone (Redis emptied?); retaken by %s", self.key, self.owner)
        return kept > 0

    async def release(self) -> bool:
        """Give the lease up if still ours; a lapsed lease is left to its new owner."""
        return bool(await self._release(keys=[self.key], args=[self.owner]))


def read_lease(client: redis.Redis, key: str) -> LeaseInfo:
    pipe = client.pipeline(transaction=False)
    pipe.get(key)
    pipe.pttl(key)
    owner, pttl = pipe.execute()
    return LeaseInfo(_text(owner), max(0, pttl) / 1000.0)


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


class Holding:
    """Whether a lease is certainly still ours, judged from its renewal outcomes.

    A refused renewal means another holder owns the key: lost at once. An unknown outcome
    (a Redis error) is tolerated while the TTL since the last good renewal has not run
    out, because the key may still be ours; past that, another holder may have taken it,
    so the lease is lost, unless the holder is ``patient``: then it only stops being
    certain, and a later renewal (or retake) makes it certain again.
    """

    def __init__(self, ttl_seconds: float, now: float, *, patient: bool = False) -> None:
        self.ttl = ttl_seconds
        self.renewed_at = now
        self.lost = False
        self.patient = patient

    def record(self, renewed: bool | None, now: float) -> None:
        """An outcome; ``now`` is when the attempt started (the key's TTL began no later)."""
        if renewed:
            self.renewed_at = max(self.renewed_at, now)
        elif renewed is False or not (self.patient or self.certain(now)):
            self.lost = True

    def certain(self, now: float) -> bool:
        return not self.lost and now - self.renewed_at < self.ttl


class Renewer:
    """Renews a lease from a background thread while a blocking section runs.

    ``lost`` is set as soon as a renewal fails, so the section can stop its work.
    """

    def __init__(self, lease: Lease, every_seconds: float) -> None:
        self.lease = lease
        self.every = every_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"renew:{lease.key}", daemon=True)

    def __enter__(self) -> Renewer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 5)

    def _run(self) -> None:
        holding = Holding(self.lease.ttl_ms / 1000, time.monotonic())
        while not self._stop.wait(self.every):
            started = time.monotonic()
            holding.record(self.lease.try_renew(), started)
            if holding.lost:
                self.lost.set()
                return
