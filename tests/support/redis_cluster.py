"""A real Redis Cluster the test owns: six redis-servers, three masters with a replica each.

Joined by ``redis-cli --cluster create … --cluster-replicas 1`` as an operator would; every
node's client port and cluster bus port come from this worker's block, so clusters of two
xdist workers never meet. ``kill_master_of`` SIGKILLs the master of a slot, the way a
shard is lost; its replica is promoted after the node timeout.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.cluster import RedisCluster as SyncCluster
from redis.crc import key_slot

from tests.support.ports import free_port
from tests.support.redis_server import RedisServer

NODE_TIMEOUT_MS = 1000


class RedisClusterServers:
    def __init__(self, workdir: Path, nodes: int = 6) -> None:
        self.nodes = [
            RedisServer(workdir / f"node{i}", extra=_cluster_args()) for i in range(nodes)
        ]

    @property
    def url(self) -> str:
        """Any node names the cluster; the first is as good as another."""
        return self.nodes[0].url

    def start(self, timeout: float = 30.0) -> RedisClusterServers:
        try:
            for node in self.nodes:
                node.start()
            self._create(timeout)
            self._wait_until_ok(timeout)
            self.wait_until_replicated(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self, timeout: float) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (make test installs redis)")
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        argv = [cli, "--cluster", "create", *addresses, "--cluster-replicas", "1", "--cluster-yes"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")

    def _wait_until_ok(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._state(n) == "ok" for n in self.nodes if n.running):
                return
            time.sleep(0.1)
        raise TimeoutError("the cluster did not reach cluster_state:ok")

    def wait_until_replicated(self, timeout: float = 30.0) -> None:
        """Until every replica has synced: one that never did has no data to take over
        with, and would never be promoted."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            roles = [n.client().info("replication") for n in self.nodes]
            replicas = [r for r in roles if r.get("role") == "slave"]
            if len(replicas) == len(self.nodes) // 2 and all(
                r.get("master_link_status") == "up" for r in replicas
            ):
                return
            time.sleep(0.1)
        raise TimeoutError("the cluster's replicas did not sync")

    @staticmethod
    def _state(node: RedisServer) -> str | None:
        try:
            info = node.client().execute_command("CLUSTER", "INFO")
        except redis.RedisError:
            return None
        text = info.decode() if isinstance(info, bytes) else str(info)
        for line in text.splitlines():
            if line.startswith("cluster_state:"):
                return line.split(":", 1)[1].strip()
        return None

    def client(self) -> SyncCluster:
        return SyncCluster(host="127.0.0.1", port=self.nodes[0].port, socket_timeout=2)

    def master_of(self, key: str) -> RedisServer:
        """The node serving ``key``'s slot now."""
        cluster = self.client()
        try:
            node = cluster.get_node_from_key(key)
            assert node is not None
            port = int(node.port)
        finally:
            cluster.close()
        return next(n for n in self.nodes if n.port == port)

    def masters(self) -> list[RedisServer]:
        def role(node: RedisServer) -> str:
            with node.client() as client:
                return str(client.info("replication")["role"])

        return [n for n in self.nodes if n.running and role(n) == "master"]

    def move_slot_of(self, key: str, to: RedisServer, pause: float = 0.0) -> None:
        """Move ``key``'s slot, keys and all, to the master ``to`` as ``redis-cli --cluster
        reshard`` does: IMPORTING and MIGRATING, MIGRATE a key at a time (``pause``
        seconds between them, so writers meet the ASK and TRYAGAIN of a slot half
        moved), then the new owner told to every master."""
        slot = key_slot(key.encode())
        with self.master_of(key).client() as src, to.client() as dst:
            src_id, dst_id = (c.execute_command("CLUSTER", "MYID").decode() for c in (src, dst))
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):
                src.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
                time.sleep(pause)
        for master in self.masters():
            with master.client() as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    def kill_master_of(self, key: str) -> RedisServer:
        master = self.master_of(key)
        master.stop()
        return master

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_args() -> tuple[str, ...]:
    return (
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        str(NODE_TIMEOUT_MS),
        "--cluster-port",
        str(free_port()),
        "--repl-diskless-sync-delay",
        "0",
        # A lost shard must not stop the others (the default refuses every key while any
        # slot has no master); docs/configuration.md asks the same of an operator's cluster.
        "--cluster-require-full-coverage",
        "no",
    )
