"""Hearing ticks on a plain Redis or a Redis Cluster alike, for the fleet's own consumers.

On one Redis, ticks go out with PUBLISH on ``ticker:<u>:options``; on a Redis Cluster with
SPUBLISH on the sharded ``ticker:{<u>}:options``, which only SSUBSCRIBE hears, on the node
that owns the slot. ``tickfleet tail``, the chain page's fan-out and the tests read ticks
through one of these listeners, which ask the server which it is (as the streams do) and
then name the channels to match (``channels``). redis-py's cluster pub/sub follows a slot
to its new master after a failover and re-subscribes there. A slot moved by a reshard is
another matter: the old master ends the subscription with an SUNSUBSCRIBE, and redis-py
moves it only on its next refresh of the slot map, which a client that only listens never
makes; so the listeners raise ``SubscriptionDropped`` (a ``ConnectionError``) and their
callers listen again on a new client, as after any lost connection.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncCluster
from redis.cluster import RedisCluster

from tickfleet.runtime.connections import open_publish_client, sync_publish_client
from tickfleet.ticks.channels import Channels

TICK_MESSAGES = ("message", "smessage")
NOT_A_TICK = ("", b"")
"""What ``get`` returns for anything heard that is no tick (a PONG, a confirmation)."""


DROPPED_MESSAGES = ("unsubscribe", "sunsubscribe")


class SubscriptionDropped(redis.ConnectionError):
    """The server ended a subscription the listener never ended (its slot moved)."""


def _tick(message: dict[str, Any] | None, wanted: set[str]) -> tuple[str, bytes] | None:
    if message is None:
        return None
    channel = message["channel"]
    name = channel.decode() if isinstance(channel, bytes) else str(channel)
    if message["type"] not in TICK_MESSAGES:
        if message["type"] in DROPPED_MESSAGES and name in wanted:
            raise SubscriptionDropped(f"the server ended the subscription to {name}")
        return NOT_A_TICK
    return name, message["data"]


class TickListener:
    """A blocking subscription to tick channels; ``close`` it (or use ``with``)."""

    def __init__(self, client: redis.Redis | RedisCluster) -> None:
        self._client = client
        self.sharded = isinstance(client, RedisCluster)
        self._pubsub: Any = client.pubsub()
        self._wanted: set[str] = set()

    @classmethod
    def open(cls, url: str, timeout: float = 2.0) -> TickListener:
        return cls(sync_publish_client(url, timeout))

    def channels(self, root: str, underlying: str) -> Channels:
        return Channels.for_underlying(root, underlying, self.sharded)

    def subscribe(self, *channels: str) -> None:
        self._wanted.update(channels)
        if self.sharded:
            self._pubsub.ssubscribe(*channels)
        else:
            self._pubsub.subscribe(*channels)

    def get(self, timeout: float) -> tuple[str, bytes] | None:
        """The next message as (channel, payload), ``NOT_A_TICK`` for one that is no tick,
        or None when nothing came within ``timeout`` seconds; raises ``SubscriptionDropped``
        when the server ended one of its subscriptions."""
        if self.sharded:
            return _tick(self._pubsub.get_sharded_message(timeout=timeout), self._wanted)
        return _tick(self._pubsub.get_message(timeout=timeout), self._wanted)

    def close(self) -> None:
        self._pubsub.close()
        self._client.close()

    def __enter__(self) -> TickListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTickListener:
    """The same on an event loop; ``open`` it, ``aclose`` it."""

    def __init__(self, client: aioredis.Redis | AsyncCluster) -> None:
        self._client = client
        self.sharded = isinstance(client, AsyncCluster)
        self._pubsub: Any = client.pubsub()
        self._wanted: set[str] = set()

    @classmethod
    async def open(cls, url: str, timeout: float, name: str | None = None) -> AsyncTickListener:
        """``name`` shows in the server's CLIENT LIST."""
        return cls(await open_publish_client(url, timeout, name))

    async def subscribe(self, *channels: str) -> None:
        self._wanted.update(channels)
        if self.sharded:
            await self._pubsub.ssubscribe(*channels)
        else:
            await self._pubsub.subscribe(*channels)

    async def get(self, timeout: float) -> tuple[str, bytes] | None:
        if self.sharded:
            return _tick(await self._pubsub.get_sharded_message(timeout=timeout), self._wanted)
        return _tick(await self._pubsub.get_message(timeout=timeout), self._wanted)

    async def ping(self) -> bool:
        """Ask the server for a sign of life: True when the answer came now (a cluster,
        asked directly), False when it comes later as a message (a plain subscription's
        PONG). A cluster's per-node subscriptions are repaired by the reads themselves."""
        if self.sharded:
            await self._client.ping()
            return True
        await self._pubsub.ping()
        return False

    async def aclose(self) -> None:
        await self._pubsub.aclose()
        await self._client.aclose()
