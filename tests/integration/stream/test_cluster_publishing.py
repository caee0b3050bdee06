"""Publishing on a real local Redis Cluster (three masters, a replica each): NIFTY,
BANKNIFTY and SENSEX, whose hash tags fall on three different shards, tick on their
sharded channels (``ticker:{nifty}:options``, heard with SSUBSCRIBE) priced on their own
index, with latest-tick hashes the chain page reads; then one shard's master is SIGKILLed:
the other two underlyings never stop, only the lost shard's breaker opens, and its
underlying publishes again once the replica is promoted."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from redis.crc import key_slot

from tests.conftest import Fleet
from tests.support.breakers import reported_failures
from tests.support.failover import gap_around
from tests.support.heard_at import HeardAt, heard_at
from tests.support.polling import wait_until
from tests.support.redis_cluster import NODE_TIMEOUT_MS, RedisClusterServers
from tests.support.seed import near_money, seed_universe
from tests.support.ticks import TickCollector, collecting
from tests.support.timing import FAST_FLEET
from tests.support.underlyings import (
    UNDERLYINGS,
    check_chain_pages,
    check_underlying,
    enough_chains,
)
from tickfleet.config.settings import Settings
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(150)

TICK_SECONDS = 0.3
LOST = "NIFTY"  # its shard's master is killed


def _shard(settings: Settings, name: str) -> int:
    """Which third of the slots (which of the three masters) carries ``name``."""
    channels = Channels.for_underlying(settings.channel_root, name, sharded=True)
    return key_slot(channels.options.encode()) * 3 // 16384


def test_three_underlyings_publish_on_a_cluster_and_a_lost_shard_stops_only_its_own(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_cluster: RedisClusterServers,
    tmp_path: Path,
) -> None:
    settings = make_settings(
        feed="mock",
        underlyings=",".join(UNDERLYINGS),
        mock_tick_interval_seconds=TICK_SECONDS,
        publish_redis_url=redis_cluster.url,
        **FAST_FLEET,
    )
    assert len({_shard(settings, n) for n in UNDERLYINGS}) == 3  # one shard each
    options = seed_universe(settings, with_expired=False)
    chosen = {n: near_money(options, n, settings.underlying(n).spot) for n in UNDERLYINGS}
    url = fleet_factory(settings).everything(streams=len(UNDERLYINGS) + 1)
    with collecting(settings, UNDERLYINGS) as collectors:
        assert all(
            c.channels.options == f"ticker:{{{n.lower()}}}:options" for n, c in collectors.items()
        )
        with httpx.Client(base_url=url, timeout=30) as api:
            body = [{"instrument_token": o.instrument_token} for c in chosen.values() for o in c]
            assert api.post("/subscriptions", json=body).status_code == 200
            next(iter(collectors.values())).wait_for(
                lambda _: enough_chains(collectors), 60, "whole chain ticks of each underlying"
            )
            check_chain_pages(api, chosen)  # read off the cluster's latest-tick hashes
        for name, collector in collectors.items():
            check_underlying(
                settings, name, chosen[name], collector.options(), collector.underlying()
            )
        channel = {n: c.channels.options for n, c in collectors.items()}
        others = [n for n in UNDERLYINGS if n != LOST]
        with ExitStack() as stack:
            heard = {
                n: stack.enter_context(
                    heard_at(redis_cluster.master_of(channel[n]).port, [channel[n]], tmp_path / n)
                )
                for n in others
            }
            _lose_a_shard(settings, redis_cluster, collectors, heard)


def _lose_a_shard(
    settings: Settings,
    cluster: RedisClusterServers,
    collectors: dict[str, TickCollector],
    heard: dict[str, HeardAt],
) -> None:
    """Kill LOST's master; the others' continuity is what their own listener processes
    heard, from before the kill until after LOST's underlying published again."""
    lost = cluster.kill_master_of(Channels.for_underlying("ticker", LOST, sharded=True).options)
    killed = time.time()
    channel = {n: c.channels.options for n, c in collectors.items()}

    def resumed() -> float | None:
        return gap_around(collectors[LOST].snapshot(), channel[LOST], killed)

    took = wait_until(lambda: resumed() is not None, 30, 0.1, f"{LOST} ticking again")
    back = time.time()
    time.sleep(1.0)  # the others' ticks after the whole outage
    gaps = {n: h.largest_gap(channel[n], killed, back) for n, h in heard.items()}
    failures = reported_failures(settings, UNDERLYINGS)
    print(
        f"master {lost.port} killed: {LOST} again after {took:.1f}s; the others' largest "
        f"gaps over the outage {gaps}; failures each breaker heard of {failures}"
    )
    assert cluster.master_of(channel[LOST]).port != lost.port  # its replica serves now
    # Bounded by the node timeout (failure detection and the replica's election) plus a
    # few seconds: the breaker's recovery and a probe.
    assert took < NODE_TIMEOUT_MS / 1000 + 8
    assert failures[LOST] > 0  # its own breaker saw the outage
    for name, gap in gaps.items():  # never stopped: no gap longer than a few tick intervals
        assert gap is not None and gap < 4 * TICK_SECONDS + 0.5, (name, gaps)
        assert failures[name] == 0, (name, failures)
