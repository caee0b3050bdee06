"""Cluster mode is read off the server: any node of a real local cluster says it is one,
a plain redis-server says it is not; and the cluster fixture loses a shard as a machine
would, its replica taking over within the node timeout plus a few seconds."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from redis.exceptions import ClusterDownError

from tests.support.redis_cluster import RedisClusterServers
from tickfleet.runtime.cluster import is_cluster, is_cluster_async

pytestmark = pytest.mark.timeout(90)


def test_any_node_of_a_cluster_is_detected_and_a_plain_server_is_not(
    redis_cluster: RedisClusterServers, redis_url: str
) -> None:
    assert all(is_cluster(node.url) for node in redis_cluster.nodes)
    assert is_cluster(redis_url) is False
    assert asyncio.run(is_cluster_async(redis_cluster.nodes[3].url)) is True
    assert asyncio.run(is_cluster_async(redis_url)) is False


def test_a_killed_master_is_replaced_by_its_replica(redis_cluster: RedisClusterServers) -> None:
    client = redis_cluster.client()
    try:
        client.set("{nifty}:probe", "1")
        with redis_cluster.master_of("{nifty}:probe").client() as master:
            # Replication is asynchronous: the write is on the replica before the kill.
            assert master.wait(1, 5000) == 1
        lost = redis_cluster.kill_master_of("{nifty}:probe")
        killed = time.monotonic()
        deadline = killed + 20
        while True:
            try:
                assert client.get("{nifty}:probe") == b"1"  # replicated before the kill
                break
            except (redis.ConnectionError, ClusterDownError, redis.TimeoutError):
                assert time.monotonic() < deadline, "no replica took over"
                time.sleep(0.2)
        took = time.monotonic() - killed
        assert redis_cluster.master_of("{nifty}:probe").port != lost.port
        print(f"replica promoted and serving {took:.1f}s after the master's SIGKILL")
        assert took < 10
    finally:
        client.close()
