"""Whether a Redis is a Redis Cluster node: asked of the server, never configured.

``PUBLISH_REDIS_URL`` may name any node of a cluster; the publishing side then uses a
cluster client, sharded channels and one script call per hash slot. The server says
which it is (``cluster_enabled:1`` in ``INFO cluster``), so an operator sets nothing else.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis


def _enabled(info: Any) -> bool:
    return bool(int(info.get("cluster_enabled", 0))) if isinstance(info, dict) else False


def is_cluster(url: str, timeout: float = 2.0) -> bool:
    """Whether the Redis at ``url`` runs in cluster mode (one short-lived connection)."""
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return _enabled(client.info("cluster"))
    finally:
        client.close()


async def is_cluster_async(url: str, timeout: float = 2.0) -> bool:
    client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return _enabled(await client.info("cluster"))
    finally:
        await client.aclose()
