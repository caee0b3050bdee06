"""One request rate per api key for the whole fleet, kept in Redis.

Kite answers at most three historical requests a second per api key and refuses the
rest with 429, whichever process sent them. Every API process therefore takes a slot
here before asking: a sliding-window log per api key (a sorted set of the admitted
requests' times), read and written by one Lua script on Redis's own clock, so that
processes on several hosts agree without agreeing on the time.

Kite counts requests when they arrive, not when they leave: a request that left later
may arrive sooner. The window is therefore a little longer than Kite's second
(``guard``), so that a few milliseconds of jitter cannot make four arrive within one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Final

import redis

from tickfleet.keyspace.keys import Keys

DEFAULT_GUARD: Final = 0.1
"""Seconds added to the window: more than loopback or a LAN's jitter."""

# KEYS[1] the api key's log; ARGV: limit, window (µs), this request's member.
# Answers 0 when admitted, else the microseconds until the oldest entry leaves the window.
_ACQUIRE: Final = """
local log = KEYS[1]
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local member = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', log, '-inf', now - window)
if redis.call('ZCARD', log) < limit then
  redis.call('ZADD', log, now, member)
  redis.call('PEXPIRE', log, math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""


class RateLimitTimeoutError(TimeoutError):
    """No slot for the api key within the time the caller could wait."""


class RateLimiter:
    """At most ``rate`` admissions per ``window + guard`` seconds per api key, fleet-wide.

    ``acquire`` waits for a slot; it never waits past its timeout, and gives up at once
    when the next slot comes later than that. ``sleep`` and ``monotonic`` are injectable
    for the caller's deadline; the window itself runs on Redis's clock.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        rate: int,
        *,
        window: float = 1.0,
        guard: float = DEFAULT_GUARD,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate < 1:
            raise ValueError(f"a rate limit admits at least one request per window, not {rate}")
        self._client = client
        self._keys = keys
        self.rate = rate
        self.window = window + guard
        self._script = client.register_script(_ACQUIRE)
        self._sleep = sleep
        self._monotonic = monotonic

    def try_acquire(self, api_key: str) -> float:
        """Take a slot now: 0.0 when taken, else the seconds until one may be free."""
        window_us = round(self.window * 1_000_000)
        member = uuid.uuid4().hex
        keys = [self._keys.history_rate(api_key)]
        wait_us = self._script(keys=keys, args=[self.rate, window_us, member])
        return int(wait_us) / 1_000_000

    def acquire(self, api_key: str, timeout: float) -> float:
        """Wait for a slot; return the seconds waited. RateLimitTimeoutError when none
        comes within ``timeout`` (no slot is taken then)."""
        start = self._monotonic()
        deadline = start + timeout
        while True:
            wait = self.try_acquire(api_key)
            now = self._monotonic()
            if wait == 0:
                return now - start
            if now + wait > deadline:
                raise RateLimitTimeoutError(
                    f"no request slot for api key {api_key} within {timeout:g}s "
                    f"({self.rate} requests per {self.window:g}s across the fleet)"
                )
            self._sleep(wait)
