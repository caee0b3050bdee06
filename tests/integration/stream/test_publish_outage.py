"""A 30 s outage of the publish target, injected by stopping the redis-server the test owns.

The fleet's own Redis (leases, assignment, breaker state) stays up; only the Redis that
consumers read disappears. The stream must keep its loop and lease, drop and count ticks
while the breaker is open, probe after the recovery timeout, close, and replay the latest
tick of every subscribed token to consumers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Fleet
from tests.support.redis_server import RedisServer
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector
from tickfleet.metrics import read_counter
from tickfleet.names import Channels, Keys
from tickfleet.settings import Settings

pytestmark = pytest.mark.timeout(180)
OUTAGE = 30.0
RECOVERY = 5.0


def counter(client: redis.Redis, name: str) -> float:
    return read_counter(client, "tickfleet:", name)


def test_a_publish_outage_never_stops_the_stream_and_consumers_resync(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_server_factory: Callable[[], RedisServer],
    redis_client: redis.Redis,
) -> None:
    target = redis_server_factory()
    settings = make_settings(
        publish_redis_url=target.url, feed="mock", mock_tick_interval_seconds=0.3,
        breaker_failure_threshold=3, breaker_recovery_timeout=RECOVERY,
        breaker_window_seconds=30.0, publish_timeout_seconds=0.5, watchdog_interval_seconds=1.0,
        lease_ttl_seconds=3.0, lease_renew_seconds=1.0, reload_min_interval_seconds=1.0,
    )
    options = seed_universe(settings, with_expired=False)
    fleet = fleet_factory(settings)
    _, url = fleet.api()
    fleet.control_worker()
    fleet.stream_worker()
    fleet.beat()
    keys = Keys(settings.key_prefix)
    api = httpx.Client(base_url=url, timeout=30)
    chain = options[:6]
    tokens = {o.instrument_token for o in chain}
    assert api.post("/subscriptions", json=[{"instrument_token": t} for t in tokens]).status_code == 200
    before = TickCollector(target.url).start()
    before.wait_for(lambda c: tokens <= {t["instrument_token"] for t in c.options()}, 20,
                    "ticks before the outage")
    before.stop()
    owner = redis_client.get(keys.stream_lease("account:sim-1"))

    target.stop()
    outage_started = time.time()
    samples: list[dict[str, Any]] = []
    while time.time() - outage_started < OUTAGE:
        stream = api.get("/health").json()["streams"]["account:sim-1"]
        samples.append({"at": time.time(), **stream})
        time.sleep(0.5)
    health = api.get("/health").json()

    # the stream kept its loop and its lease the whole time
    assert {s["lease_holder"] for s in samples} == {owner.decode()}
    late = [s for s in samples if s["at"] > outage_started + 3]
    assert all(s["at"] - s["last_tick_at"] < 2.0 for s in late), "the feed kept ticking"
    assert len({s["ticks"] for s in late}) == 1, "nothing was published during the outage"
    # drops were counted, the breaker opened and /health says so
    assert health["status"] == "degraded"
    assert health["breaker"]["state"] in ("open", "half_open")
    assert health["breaker"]["source"] == "shared"
    assert any("publish breaker" in p for p in health["problems"])
    assert counter(redis_client, "redis_circuit_open_drops_total") > 0
    assert counter(redis_client, "redis_publish_failures_total") >= 3

    target.start()
    restarted = time.time()
    after = TickCollector(target.url).start()
    try:
        took = after.wait_for(
            lambda c: tokens <= {t["instrument_token"] for t in c.options()}, RECOVERY + 15,
            "the latest tick of every token after recovery")
        print(f"consumers resynced {took:.2f}s after the publish target came back")
        deadline = time.monotonic() + 10
        while api.get("/health").json()["breaker"]["state"] != "closed":
            assert time.monotonic() < deadline, "the breaker must close after a good probe"
            time.sleep(0.2)
        latest = target.client().hkeys(Channels(settings.channel_prefix).latest_options)
        assert {int(k) for k in latest} == tokens
        assert counter(redis_client, "redis_circuit_replayed_total") >= len(tokens)
        assert redis_client.get(keys.stream_lease("account:sim-1")) == owner
        assert time.time() - restarted < RECOVERY + 15
    finally:
        after.stop()
        api.close()
