"""What the fleet's shared publish breakers were told, read off their store."""

from __future__ import annotations

from collections.abc import Iterable

import redis

from tickfleet.config.settings import Settings
from tickfleet.keyspace.keys import Keys, publish_breaker


def reported_failures(settings: Settings, underlyings: Iterable[str]) -> dict[str, int]:
    """The failures each underlying's publish breaker was ever told of: the store's running
    count, which a success does not clear (the window's ``failure_count`` it does)."""
    client = redis.Redis.from_url(settings.redis_url)
    keys = Keys(settings.key_prefix)
    try:
        counts = {
            n: client.hget(keys.breaker_state(publish_breaker(n)), "failures") for n in underlyings
        }
    finally:
        client.close()
    return {n: int(count or 0) for n, count in counts.items()}
