"""A subscription a test reads its channel from, made and closed in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis


@contextmanager
def subscribed(client: redis.Redis, channel: str) -> Iterator[redis.client.PubSub]:
    """Subscribed to ``channel`` (its confirmation read) for the block, then closed."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(channel)
        pubsub.get_message(timeout=1)
        yield pubsub
    finally:
        pubsub.close()
