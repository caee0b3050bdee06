"""Publishing six underlyings at once on one Redis and on a Redis Cluster, in one run.

Throughput. ``--processes`` publishing processes (as stream processes would be), the six
underlyings dealt round-robin among them. Each builds its publishing the way a stream
does (``Publishing.build`` on the client ``stream_clients`` would make: one lane on one
Redis, a lane per underlying with SPUBLISH on a cluster), a ``SharedBreaker`` per lane on
the fleet's Redis, and keeps every lane busy with whole simulated chains of real option
payloads (``bench.publish``) for ``--seconds``. Targets, rounds interleaved, medians
reported: one redis-server, and a local cluster of three masters with a replica each
(``tests.support.redis_cluster``), its slots placed so each master carries two of the six
underlyings. Each master's share of the messages is read off the servers themselves
(``INFO commandstats``: SPUBLISH calls made by the publish script).

Shard failover. One process publishes all six underlyings at a steady pace on the
cluster; ``--shard-kills`` times, the master carrying NIFTY is SIGKILLed: the gap in
NIFTY's ticks a subscriber hears (SSUBSCRIBE), the largest gap of the underlyings on the
other masters, and the killed node is started again (it rejoins as a replica). The
breakers keep their shared state from kill to kill: a failover's failures end with its
first success, so ten kills within a minute never add up to an open breaker.

Stream failover. ``--failover-kills`` SIGKILLs of a stream worker with a standby, by
``bench.failover`` (the option and underlying streams in turn): ``failover_median_s``,
``failover_max_s``.

The last line printed is one JSON object.

    python bench/scale.py [--processes 2] [--seconds 3] [--rounds 3] [--shard-kills 3]
                          [--failover-kills 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from itertools import pairwise
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.failover import figures as failover_figures  # noqa: E402
from bench.failover import run as failover_run  # noqa: E402
from bench.publish import Chain, make_chains, stamp_of, superset  # noqa: E402
from tests.support.heard_at import heard_at  # noqa: E402
from tests.support.redis_cluster import RedisClusterServers  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.ticks import TickCollector  # noqa: E402
from tickfleet.breaker import BreakerConfig, SharedBreaker  # noqa: E402
from tickfleet.keyspace.keys import Keys  # noqa: E402
from tickfleet.metrics.buffer import MetricsBuffer  # noqa: E402
from tickfleet.runtime.clock import SystemClock  # noqa: E402
from tickfleet.runtime.connections import (  # noqa: E402
    fail_fast_async_client,
    open_publish_client,
)
from tickfleet.stream.publisher import Fence, PublisherConfig, TickPublisher  # noqa: E402
from tickfleet.stream.publishing import Publishing, channels_of  # noqa: E402
from tickfleet.ticks.channels import Channels  # noqa: E402

UNDERLYINGS = ("NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "SENSEX", "BANKEX")
ROOT_CHANNEL = "ticker"
LOST = "NIFTY"
PACE_SECONDS = 0.1  # the shard-failover phase: a chain of each underlying every 0.1 s


# --- one publishing process -----------------------------------------------------------------


def publish_process(
    url: str, fleet_url: str, names: Sequence[str], seconds: float, start_at: float,
    paced: bool, conn: Connection,
) -> None:  # fmt: skip
    """Publish ``names``' chains on ``url`` until ``start_at + seconds``; send the count."""
    chains = make_chains(200, 4)
    conn.send(asyncio.run(_publish(url, fleet_url, names, chains, seconds, start_at, paced)))
    conn.close()


async def _publish(
    url: str, fleet_url: str, names: Sequence[str], chains: list[Chain], seconds: float,
    start_at: float, paced: bool,
) -> int:  # fmt: skip
    config = PublisherConfig()
    client = await open_publish_client(url, config.timeout_seconds)
    sharded = isinstance(client, RedisCluster)
    store = fail_fast_async_client(fleet_url, 2.0)
    channels = channels_of(ROOT_CHANNEL, sharded)
    metrics = MetricsBuffer()

    def lane(breaker_name: str, underlying: str) -> tuple[TickPublisher, SharedBreaker]:
        breaker = SharedBreaker(store, breaker_name, BreakerConfig(), SystemClock(), metrics,
                                keys=Keys("bench:"))  # fmt: skip
        fence = Fence(channels(underlying).fence("bench"), 1, lambda newer: None)
        return TickPublisher(
            client, "bench", metrics, config, breaker, lambda: True, fence
        ), breaker

    publishing = Publishing.build(list(names), sharded, lane)
    await publishing.sync_once()
    tasks = [asyncio.create_task(p.publisher.run()) for p in publishing.lanes]
    tasks += [asyncio.create_task(p.breaker.run()) for p in publishing.lanes]
    payloads = [[superset(s, stamp_of(chain)) for s in chain] for chain in chains]
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        await _feed(publishing, names, channels, payloads, start_at + seconds, paced)
        return publishing.published
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()
        await store.aclose()


async def _feed(
    publishing: Publishing, names: Sequence[str], channels: Any, payloads: list[list[bytes]],
    until: float, paced: bool,
) -> None:  # fmt: skip
    """Offer whole chains: as fast as each lane drains, or (``paced``) one each period."""
    k = 0
    while time.time() < until:
        for name in names:
            publisher, ch = publishing.publisher(name), channels(name)
            if paced or publisher.backlog < 1000:
                for i, payload in enumerate(payloads[k % len(payloads)]):
                    publisher.offer(ch.options, ch.latest_options, str(i), payload)
        k += 1
        await asyncio.sleep(PACE_SECONDS if paced else 0)


def run_processes(
    url: str, fleet_url: str, groups: Sequence[Sequence[str]], seconds: float, paced: bool = False
) -> int:
    """Start one publishing process per group at once; the ticks they published in all."""
    ctx = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # every process has imported and connected by then
    pipes, procs = [], []
    for names in groups:
        here, there = ctx.Pipe(duplex=False)
        args = (url, fleet_url, list(names), seconds, start_at, paced, there)
        proc = ctx.Process(target=publish_process, args=args, daemon=True)
        proc.start()
        pipes.append(here)
        procs.append(proc)
    try:
        return sum(int(pipe.recv()) for pipe in pipes if pipe.poll(seconds + 60))
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()


# --- the cluster's placement and shares ----------------------------------------------------


def slot_of(name: str) -> int:
    return key_slot(channels_of(ROOT_CHANNEL, True)(name).options.encode())


def place_two_per_master(cluster: RedisClusterServers) -> None:
    """Move empty slots so that each master carries two underlyings (by hash alone, four
    of the six fall on one master): ``CLUSTER SETSLOT … NODE`` on every master."""
    masters = sorted(_masters(cluster), key=lambda n: n.port)
    ids = {n.port: n.client().execute_command("CLUSTER", "MYID").decode() for n in masters}
    for i, name in enumerate(UNDERLYINGS):
        target = masters[i % len(masters)]
        for node in masters:
            node.client().execute_command(
                "CLUSTER", "SETSLOT", slot_of(name), "NODE", ids[target.port]
            )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if all(cluster.master_of(f"{{{n.lower()}}}").port == masters[i % 3].port
               for i, n in enumerate(UNDERLYINGS)):  # fmt: skip
            return
        time.sleep(0.1)
    raise TimeoutError("the slots did not move")


def _masters(cluster: RedisClusterServers) -> list[RedisServer]:
    return [
        n for n in cluster.nodes
        if n.running and n.client().info("replication").get("role") == "master"
    ]  # fmt: skip


def spublish_calls(cluster: RedisClusterServers) -> dict[int, int]:
    """SPUBLISH calls so far, per master port (INFO commandstats counts a script's calls)."""
    calls = {}
    for node in _masters(cluster):
        stats = node.client().info("commandstats").get("cmdstat_spublish", {})
        calls[node.port] = int(stats.get("calls", 0)) if isinstance(stats, dict) else 0
    return calls


def reset_stats(cluster: RedisClusterServers) -> None:
    for node in _masters(cluster):
        node.client().config_resetstat()


# --- phases -------------------------------------------------------------------------------


def throughput(
    single: RedisServer, cluster: RedisClusterServers, processes: int, seconds: float, rounds: int
) -> dict[str, Any]:
    groups = [UNDERLYINGS[i::processes] for i in range(processes)]
    single_rates, cluster_rates, shares = [], [], []
    for r in range(rounds):
        single_rates.append(run_processes(single.url, single.url, groups, seconds) / seconds)
        reset_stats(cluster)
        cluster_rates.append(run_processes(cluster.url, single.url, groups, seconds) / seconds)
        calls = spublish_calls(cluster)
        shares.append({port: n / max(1, sum(calls.values())) for port, n in calls.items()})
        print(f"round {r + 1}: single {single_rates[-1]:,.0f}/s, cluster "
              f"{cluster_rates[-1]:,.0f}/s, shard shares {_rounded(shares[-1])}")  # fmt: skip
    one, many = statistics.median(single_rates), statistics.median(cluster_rates)
    return {
        "ticks_per_s_single": round(one),
        "ticks_per_s_cluster": round(many),
        "cluster_ratio": round(many / one, 3),
        "shard_shares": sorted(
            round(statistics.median(s[p] for s in shares), 3) for p in shares[-1]
        ),
    }


def _rounded(shares: dict[int, float]) -> list[float]:
    return [round(v, 3) for v in shares.values()]


def shard_failover(cluster: RedisClusterServers, fleet_url: str, kills: int) -> dict[str, Any]:
    """Kill NIFTY's master ``kills`` times while one process publishes all six, paced.

    Everyone names the cluster by a node that stays up (SENSEX's master): a client given
    only the killed node could not find the cluster again after a restart. The other
    shards' silences are heard by a listener process each (``tests.support.heard_at``):
    in this process they would include its own stalls while NIFTY's collector reconnects."""
    url = cluster.master_of("{sensex}").url
    collector = TickCollector(url, LOST).start()
    lost_gaps: list[float | None] = []
    other_gaps: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(kills):
                lost_gap, others_gap = _kill_once(
                    cluster, fleet_url, url, collector, Path(tmp, str(k))
                )
                lost_gaps.append(lost_gap)
                other_gaps.append(others_gap)
                print(f"shard kill {k + 1}: {LOST} {lost_gap}, others' largest {others_gap:.2f}s")
    finally:
        collector.stop()
    heard = [g for g in lost_gaps if g is not None]
    return {
        "shard_kills": kills,
        "shard_failover_median_s": round(statistics.median(heard), 2) if heard else None,
        "shard_failover_max_s": round(max(heard), 2) if heard else None,
        "shard_failover_unheard": kills - len(heard),
        "other_shards_max_gap_s": round(max(other_gaps), 2) if other_gaps else None,
    }


def _kill_once(
    cluster: RedisClusterServers, fleet_url: str, url: str, collector: TickCollector, out: Path
) -> tuple[float | None, float]:
    """One kill: NIFTY's gap as its collector heard it, and the largest silence of the
    underlyings on the other masters."""
    out.mkdir()
    with ThreadPoolExecutor(1) as pool, ExitStack() as stack:
        published = pool.submit(run_processes, url, fleet_url, [UNDERLYINGS], 14.0, True)
        time.sleep(8.0)  # 3 s to start, then 5 s of steady ticks
        channel = {
            n: Channels.for_underlying("ticker", n, sharded=True).options for n in UNDERLYINGS
        }
        others = [n for n in UNDERLYINGS if not _same_master(cluster, n, LOST)]
        heard = {
            n: stack.enter_context(
                heard_at(cluster.master_of(channel[n]).port, [channel[n]], out / n)
            )
            for n in others
        }
        lost = cluster.kill_master_of(channel[LOST])
        killed = time.time()
        published.result(timeout=60)
        gaps = [heard[n].largest_gap(channel[n], killed, killed + 4.0) for n in others]
    lost.start()  # it rejoins as its successor's replica
    cluster.wait_until_replicated()
    return largest_gap(collector, killed), max(g if g is not None else math.inf for g in gaps)


def _sharded_options(underlying: str) -> str:
    return Channels.for_underlying(ROOT_CHANNEL, underlying, sharded=True).options


def largest_gap(collector: TickCollector, killed: float) -> float | None:
    """The longest silence on the options channel from just before the kill to the end
    (ticks already sent when the master died still arrive just after it); None if the
    channel was never heard again."""
    times = sorted(
        r.at for r in collector.snapshot(killed - 2 * PACE_SECONDS)
        if r.channel == collector.channels.options
    )  # fmt: skip
    if not times or times[-1] <= killed + 2 * PACE_SECONDS:
        return None
    return max(later - earlier for earlier, later in pairwise(times))


def _same_master(cluster: RedisClusterServers, one: str, other: str) -> bool:
    return (
        cluster.master_of(f"{{{one.lower()}}}").port
        == cluster.master_of(f"{{{other.lower()}}}").port
    )


def stream_failover(kills: int, logdir: Path) -> dict[str, Any]:
    if kills <= 0:
        return {}
    measured = failover_figures(failover_run("standby", kills, 5.0, 0, logdir))
    return {"failover_median_s": measured["median_s"], "failover_max_s": measured["max_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shard-kills", type=int, default=3)
    parser.add_argument("--failover-kills", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tickfleet-scale-") as tmp:
        workdir = Path(tmp)
        single = RedisServer(workdir / "single").start()
        cluster = RedisClusterServers(workdir / "cluster")
        try:
            cluster.start()
            place_two_per_master(cluster)
            figures = {"underlyings": len(UNDERLYINGS), "processes": args.processes}
            figures |= throughput(single, cluster, args.processes, args.seconds, args.rounds)
            figures |= shard_failover(cluster, single.url, args.shard_kills)
        finally:
            cluster.stop()
            single.stop()
        figures |= stream_failover(args.failover_kills, workdir)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
