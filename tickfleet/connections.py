"""How tickfleet connects to Redis: every client is built here, with bounded timeouts.

Two kinds. A *patient* client (the fleet's own Redis: leases, assignment, metrics) keeps
redis-py's retries, because a blip there should be ridden out. A *fail-fast* client
(the breaker's store, the failure log, the publish target) makes one attempt: redis-py
otherwise retries a refused connection for seconds, and the code that holds such a
client must notice an outage at once and decide locally.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry


def patient_client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


def fail_fast_client(url: str, timeout: float = 0.5) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def fail_fast_async_client(url: str, timeout: float, read_timeout: bool = True) -> aioredis.Redis:
    """``read_timeout=False`` when the caller bounds every command itself (asyncio timeout)."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout if read_timeout else None,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
