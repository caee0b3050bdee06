"""A 30 s outage of the publish target, injected by stopping the redis-server the test owns.

The fleet's own Redis (leases, assignment, breaker state) stays up; only the Redis that
consumers read disappears. The stream must keep its loop and lease, drop and count ticks
while the breaker is open, probe after the recovery timeout, close, and replay the latest
tick of every subscribed token to consumers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.redis_server import RedisServer
from tests.support.runs import as_text
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.fleet import read_counter
from tickfleet.runtime.clock import Clock, clock_from_settings
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(180)
OUTAGE = 30.0
RECOVERY = 5.0


def counter(client: redis.Redis, name: str) -> float:
    return read_counter(client, "tickfleet:", name)


@dataclass
class Outage:
    target: RedisServer
    api: httpx.Client
    tokens: set[int]
    keys: Keys
    channels: Channels
    clock: Clock  # the fleet's: stream status times are on it


@pytest.fixture
def outage(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_server_factory: Callable[[], RedisServer],
) -> Iterator[Outage]:
    """A streaming fleet whose publish target is a redis-server of its own."""
    target = redis_server_factory()
    settings = make_settings(
        publish_redis_url=target.url,
        feed="mock",
        mock_tick_interval_seconds=0.3,
        breaker_failure_threshold=3,
        breaker_recovery_timeout=RECOVERY,
        breaker_window_seconds=30.0,
        publish_timeout_seconds=0.5,
        **FAST_FLEET,
    )
    tokens = {o.instrument_token for o in seed_universe(settings, with_expired=False)[:6]}
    fleet = fleet_factory(settings)
    url = fleet.everything()
    with httpx.Client(base_url=url, timeout=30) as api:
        body = [{"instrument_token": t} for t in tokens]
        assert api.post("/subscriptions", json=body).status_code == 200
        yield Outage(
            target,
            api,
            tokens,
            Keys(settings.key_prefix),
            Channels.for_underlying(settings.channel_root, "NIFTY"),
            clock_from_settings(settings),
        )


def every_token(tokens: set[int]) -> Callable[[TickCollector], bool]:
    return lambda c: tokens <= {t["instrument_token"] for t in c.options()}


def sample_streams(api: httpx.Client, seconds: float, clock: Clock) -> list[dict[str, Any]]:
    started = time.monotonic()
    samples = []
    while time.monotonic() - started < seconds:
        stream = api.get("/health").json()["streams"]["account:sim-1"]
        samples.append({"at": clock.time(), **stream})
        time.sleep(0.5)
    return samples


def test_a_publish_outage_never_stops_the_stream_and_consumers_resync(
    outage: Outage, redis_client: redis.Redis
) -> None:
    before = TickCollector(outage.target.url).start()
    before.wait_for(every_token(outage.tokens), 20, "ticks before the outage")
    before.stop()
    owner = redis_client.get(outage.keys.stream_lease("account:sim-1"))
    assert owner is not None

    outage.target.stop()
    outage_started = outage.clock.time()
    samples = sample_streams(outage.api, OUTAGE, outage.clock)
    health = outage.api.get("/health").json()
    # the stream kept its loop and its lease the whole time, and published nothing
    assert {s["lease_holder"] for s in samples} == {as_text(owner)}
    late = [s for s in samples if s["at"] > outage_started + 3]
    assert all(s["at"] - s["last_tick_at"] < 2.0 for s in late), "the feed kept ticking"
    assert len({s["ticks"] for s in late}) == 1, "nothing was published during the outage"
    # drops were counted, the breaker opened, and /health says so
    assert health["status"] == "degraded"
    assert health["breaker"]["state"] in ("open", "half_open")
    assert health["breaker"]["source"] == "shared"
    assert any("publish breaker" in p for p in health["problems"])
    assert counter(redis_client, "redis_circuit_open_drops_total") > 0
    assert counter(redis_client, "redis_publish_failures_total") >= 3

    outage.target.start()
    after = TickCollector(outage.target.url).start()
    try:
        took = after.wait_for(
            every_token(outage.tokens),
            RECOVERY + 15,
            "the latest tick of every token after recovery",
        )
        print(f"consumers resynced {took:.2f}s after the publish target came back")
        closed = lambda: outage.api.get("/health").json()["breaker"]["state"] == "closed"  # noqa: E731
        wait_until(closed, 10, 0.2, "the breaker closing after a good probe")
    finally:
        after.stop()
    latest = outage.target.client().hkeys(outage.channels.latest_options)
    assert {int(k) for k in latest} == outage.tokens
    # How many held ticks were replayed depends on which probe closed the breaker: this
    # stream's own probe batch carries a chain tick of every token, which supersedes the
    # held ones (none replayed); another stream's probe closes it with the held ones still
    # the newest (all replayed). Consumers resync either way, as heard above; the replay
    # itself, counted exactly, is test_publisher's
    # test_open_breaker_drops_without_io_and_replays_the_newest_tick_per_token.
    assert redis_client.get(outage.keys.stream_lease("account:sim-1")) == owner
