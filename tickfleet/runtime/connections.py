"""How tickfleet connects to Redis: every client is built here, with bounded timeouts.

A stream's clients come from ``stream_clients``, which opens one async client per Redis
role and closes all of them when the stream ends. When the publish Redis is a Redis
Cluster node (asked of the server, ``tickfleet.runtime.cluster``) the publish client is a
cluster client; the other roles stay on plain Redis (kombu has no cluster transport).

Two kinds. A *patient* client (the fleet's own Redis: leases, assignment, metrics) keeps
redis-py's retries, because a blip there should be ridden out. A *fail-fast* client
(the breaker's store, the failure log, the publish target) makes one attempt: redis-py
otherwise retries a refused connection for seconds, and the code that holds such a
client must notice an outage at once and decide locally.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster as SyncCluster
from redis.retry import Retry

from tickfleet.runtime.cluster import is_cluster, is_cluster_async

log = logging.getLogger("tickfleet.redis")


def patient_client(url: str, timeout: float) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30
    )


def fail_fast_client(url: str, timeout: float = 0.5) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def fail_fast_async_client(
    url: str, timeout: float, read_timeout: bool = True, name: str | None = None
) -> aioredis.Redis:
    """``read_timeout=False`` when the caller bounds every command itself (asyncio timeout);
    ``name`` shows in the server's CLIENT LIST."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout if read_timeout else None,
        socket_connect_timeout=timeout,
        retry=AsyncRetry(NoBackoff(), 0),
        client_name=name,
    )


def cluster_async_client(url: str, timeout: float, name: str | None = None) -> RedisCluster:
    """A cluster client for publishing: one attempt per command on a node, and no read
    timeout (the caller bounds every command). It follows MOVED and ASK, and maps the
    cluster again after a node stops answering, which is how a promoted replica is found."""
    return RedisCluster.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=None,
        client_name=name,
    )


@dataclass(frozen=True, slots=True)
class RedisRoles:
    """Where a stream's three Redis roles live, and how long it waits on each."""

    fleet_url: str  # leases, assignment, catalog, control channel, snapshots, status
    publish_url: str  # ticks, read by consumers
    breaker_url: str  # the breaker's shared state
    timeout: float  # fleet and breaker commands
    publish_timeout: float  # connecting to the publish target (each batch has its own bound)


@dataclass(frozen=True, slots=True)
class StreamClients:
    """A stream's async clients, one per Redis role (several may point at one server)."""

    fleet: aioredis.Redis
    publish: aioredis.Redis | RedisCluster
    breaker: aioredis.Redis

    @property
    def sharded(self) -> bool:
        """Publishing goes to a Redis Cluster: sharded channels, one call per hash slot."""
        return isinstance(self.publish, RedisCluster)


@asynccontextmanager
async def stream_clients(roles: RedisRoles, stream: str) -> AsyncIterator[StreamClients]:
    """Open the three clients of ``stream`` (named ``<stream>/<role>`` in CLIENT LIST); all
    are closed on the way out, whatever ends the stream."""
    async with AsyncExitStack() as stack:
        fleet = await stack.enter_async_context(
            fail_fast_async_client(roles.fleet_url, roles.timeout, name=f"{stream}/fleet")
        )
        publish = await _publish_client(roles, stream)
        stack.push_async_callback(publish.aclose)
        breaker = await stack.enter_async_context(
            fail_fast_async_client(roles.breaker_url, roles.timeout, name=f"{stream}/breaker")
        )
        yield StreamClients(fleet, publish, breaker)


async def _publish_client(roles: RedisRoles, stream: str) -> aioredis.Redis | RedisCluster:
    """The publish target's client. A publish Redis that does not answer at the start is
    taken for a plain one, so that an outage never keeps a stream from starting; it is
    said in the log."""
    try:
        sharded = await is_cluster_async(roles.publish_url, roles.publish_timeout)
    except (redis.RedisError, OSError) as exc:
        log.warning(
            "%s: cannot ask the publish Redis whether it is a cluster (%s); "
            "publishing as to a single Redis",
            stream,
            exc,
        )
        sharded = False
    return async_publish_client(
        roles.publish_url, roles.publish_timeout, sharded, f"{stream}/publish"
    )


def async_publish_client(
    url: str, timeout: float, sharded: bool, name: str | None = None
) -> aioredis.Redis | RedisCluster:
    """A client of the publish Redis, a cluster client when it is one. No read timeout:
    the publisher bounds every batch itself (a per-read timeout would only add a timer per
    reply), and a subscriber waits on its own terms."""
    if sharded:
        return cluster_async_client(url, timeout, name)
    return fail_fast_async_client(url, timeout, False, name)


async def open_publish_client(
    url: str, timeout: float, name: str | None = None
) -> aioredis.Redis | RedisCluster:
    """``async_publish_client`` for what the server says it is; raises when it does not
    answer."""
    return async_publish_client(url, timeout, await is_cluster_async(url, timeout), name)


def sync_publish_client(url: str, timeout: float) -> redis.Redis | SyncCluster:
    """A blocking client of the publish Redis, a cluster client when the server says it is
    one; raises when it does not answer."""
    if is_cluster(url, timeout):
        return SyncCluster.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    return patient_client(url, timeout)
