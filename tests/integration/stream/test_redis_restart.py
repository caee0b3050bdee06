"""The fleet's Redis is SIGKILLed and restarted empty while streaming (at once, and after
staying down longer than the stream lease TTL).

Leases, the assignment, the reload state, the market snapshot and every status are gone
at once. Both streams must publish again within lease TTL + watchdog period + 5 s,
/health must never say ``ok`` while a stream is missing, and the index versions that
consumers see must keep rising, the price carrying on where it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.redis_server import RedisServer
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector
from tickfleet.config.settings import Settings
from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import account_stream, underlying_stream

pytestmark = pytest.mark.timeout(150)

LEASE_TTL = 3.0
WATCHDOG = 1.0
BOUND = LEASE_TTL + WATCHDOG + 5.0


@pytest.mark.parametrize("down", [0.0, LEASE_TTL + 1.0], ids=["at-once", "after-the-ttl"])
def test_streams_come_back_after_redis_restarts_empty(
    down: float,
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    settings = make_settings(
        redis_url=server.url,
        feed="mock",
        mock_tick_interval_seconds=0.3,
        lease_ttl_seconds=LEASE_TTL,
        lease_renew_seconds=1.0,
        watchdog_interval_seconds=WATCHDOG,
        reload_min_interval_seconds=1.0,
        stream_stale_seconds=5.0,
        # The publish target is this Redis too: failed publishes open the breaker, whose
        # recovery timeout (60 s by default) is its own documented delay, not the streams'.
        breaker_recovery_timeout=1.0,
    )
    tokens = {o.instrument_token for o in seed_universe(settings, with_expired=False)[:4]}
    fleet = fleet_factory(settings)
    url = fleet.everything()
    ticks = TickCollector(settings.redis_url).start()
    keys = Keys(settings.key_prefix)
    try:
        with httpx.Client(base_url=url, timeout=10) as api:
            body = [{"instrument_token": t} for t in tokens]
            assert api.post("/subscriptions", json=body).status_code == 200
            ticks.wait_for(lambda c: _heard(c, 0.0, tokens), 20, "ticks before the restart")
            time.sleep(1.0)

            server.stop()  # SIGKILL: nothing is saved, the server restarts empty
            time.sleep(down)
            server.start()
            restarted = time.time()
            samples = _watch(api, ticks, server, keys, restarted, tokens)
    finally:
        ticks.stop()

    last = samples[-1]
    assert last["options_heard"] is not None and last["underlying_heard"] is not None
    back = max(last["options_heard"], last["underlying_heard"])
    print(f"both streams published again {back:.2f}s after the restart (bound {BOUND:.0f}s)")
    print(f"/health ok again {last['at']:.1f}s after the restart")
    assert back <= BOUND
    for s in samples:
        if not s["both_leases"]:
            assert s["status"] != "ok", f"/health said ok with a stream missing: {s}"
    versions = [t["version"] for t in ticks.underlying()]
    assert all(b > a for a, b in pairwise(versions)), "versions went back"
    index = [r for r in ticks.snapshot() if r.channel == ticks.channels.underlying]
    before = [r.tick for r in index if r.at < restarted]
    after = [r.tick for r in index if r.at >= restarted]
    assert abs(after[0]["last_price"] / before[-1]["last_price"] - 1) < 0.01


def _heard(collector: TickCollector, since: float, tokens: set[int]) -> bool:
    options = {t["instrument_token"] for t in collector.options(since)}
    return tokens <= options and bool(collector.underlying(since))


def _watch(
    api: httpx.Client,
    ticks: TickCollector,
    server: RedisServer,
    keys: Keys,
    restarted: float,
    tokens: set[int],
) -> list[dict[str, Any]]:
    """Sample leases and /health until both channels are heard again (or the bound passes)."""
    client = server.client()
    samples: list[dict[str, Any]] = []
    options_heard = underlying_heard = None
    try:
        while time.time() - restarted < BOUND + 3:
            leases = client.exists(
                keys.stream_lease(account_stream("sim-1")),
                keys.stream_lease(underlying_stream("NIFTY")),
            )
            response = api.get("/health")
            status = response.json().get("status") if response.status_code == 200 else "down"
            if options_heard is None and tokens <= {
                t["instrument_token"] for t in ticks.options(restarted)
            }:
                options_heard = time.time() - restarted
            if underlying_heard is None and ticks.underlying(restarted):
                underlying_heard = time.time() - restarted
            samples.append(
                {
                    "at": time.time() - restarted,
                    "status": status,
                    "both_leases": leases == 2,
                    "options_heard": options_heard,
                    "underlying_heard": underlying_heard,
                }
            )
            if options_heard is not None and underlying_heard is not None and status == "ok":
                break
            time.sleep(0.2)
    finally:
        client.close()
    return samples
