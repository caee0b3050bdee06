"""Leases: a Redis key owned by one holder for a TTL, renewed while the holder lives.

One mechanism serves the reload singleton lock, the per-stream leases and the beat
leader. The owner token is random per holder, so only the holder can renew or release;
renewal and release are compare-and-set scripts, never a read followed by a write.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
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
    """A renewable, owner-checked Redis lease (synchronous; async code uses to_thread)."""

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

    def release(self) -> bool:
        """Give the lease up if still ours; a lapsed lease is left to its new owner."""
        return bool(self._release(keys=[self.key], args=[self.owner]))

    def held(self) -> bool:
        return _text(self.client.get(self.key)) == self.owner

    def info(self) -> LeaseInfo:
        return read_lease(self.client, self.key)


def read_lease(client: redis.Redis, key: str) -> LeaseInfo:
    pipe = client.pipeline(transaction=False)
    pipe.get(key)
    pipe.pttl(key)
    owner, pttl = pipe.execute()
    return LeaseInfo(_text(owner), max(0, pttl) / 1000.0)


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


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
        # A refused renewal means another holder owns the key: lost at once. A Redis
        # error is retried until the TTL would have run out, because the key may still
        # be ours; past that point another holder may legitimately have taken it.
        last_ok = time.monotonic()
        while not self._stop.wait(self.every):
            try:
                if not self.lease.renew():
                    break
                last_ok = time.monotonic()
            except redis.RedisError:
                if time.monotonic() - last_ok >= self.lease.ttl_ms / 1000:
                    break
        else:
            return
        self.lost.set()
