"""One truth for "streaming": /health names every active token that does not tick, and a
subscriber hears every token /health calls streaming (real API, workers, beat, Redis)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.seed import now_of, seed_universe
from tests.support.ticks import TickCollector
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = pytest.mark.timeout(150)

CAP = 20
PER_CONNECTION = 35  # one account, one connection: room for 35 tokens


def health(api: httpx.Client) -> dict[str, Any]:
    return dict(api.get("/health").json())


def not_streaming(doc: dict[str, Any]) -> dict[int, str]:
    return {t["instrument_token"]: t["reason"] for t in doc["subscriptions"]["tokens"]}


def streaming_now(api: httpx.Client) -> tuple[set[int], dict[int, str], dict[str, Any]]:
    """Active tokens /health calls streaming, the others with their reason, the document.

    Waits out "pending" (a stream about to apply a new assignment, for a second or so):
    those tokens are honestly not called streaming, but the test wants the settled state.
    """
    docs: list[dict[str, Any]] = []

    def settled() -> bool:
        docs.append(health(api))
        return "pending" not in not_streaming(docs[-1]).values()

    wait_until(settled, 10, 0.2, "no token pending")
    doc = docs[-1]
    active = {r["instrument_token"] for r in api.get("/subscriptions?status=active").json()}
    named = not_streaming(doc)
    return active - set(named), named, doc


def heard_exactly(ticks: TickCollector, expected: set[int], seconds: float = 2.0) -> set[int]:
    since = time.time()
    time.sleep(seconds)
    return {t["instrument_token"] for t in ticks.options(since)}


def test_every_token_health_calls_streaming_is_heard_and_the_rest_are_named(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(
        feed="mock",
        mock_tick_interval_seconds=0.3,
        mock_state_max_size=CAP,
        max_tokens_per_connection=PER_CONNECTION,
        connections_per_account=1,
        **FAST_FLEET,
        stream_stale_seconds=5.0,
    )
    options = seed_universe(settings, with_expired=False)
    nearest = min(o.expiry for o in options if o.expiry is not None)
    chain: list[Instrument] = sorted(
        (o for o in options if o.expiry == nearest), key=lambda o: o.instrument_token
    )
    fleet = fleet_factory(settings)
    url = fleet.everything()
    ticks = TickCollector(settings.redis_url).start()
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            _run(api, ticks, settings, chain)
    finally:
        ticks.stop()


def _run(
    api: httpx.Client, ticks: TickCollector, settings: Settings, chain: list[Instrument]
) -> None:
    first = [i.instrument_token for i in chain[:PER_CONNECTION]]
    assert (
        api.post("/subscriptions", json=[{"instrument_token": t} for t in first]).status_code == 200
    )

    # 1. Over the mock cap: the lowest 20 tokens tick, the other 15 are named.
    wait_until(lambda: len(not_streaming(health(api))) == 15, 20, 0.2, "mock cap named")
    streaming, named, doc = streaming_now(api)
    assert named == dict.fromkeys(first[CAP:], "mock_cap")
    assert streaming == set(first[:CAP])
    assert doc["status"] == "degraded"
    assert any("(mock_cap)" in p for p in doc["problems"])
    assert heard_exactly(ticks, streaming) == streaming
    assert re.search(r'subscriptions_not_streaming\{reason="mock_cap"\} 15\.0', _metrics(api))

    # 2. Two requests raced past admission: 40 subscribed, 5 more than the account carries.
    extra = [i.instrument_token for i in chain[PER_CONNECTION : PER_CONNECTION + 5]]
    _subscribe_behind_the_apis_back(settings, extra)
    assert api.post("/admin/reload").status_code == 200
    wait_until(
        lambda: (
            sorted(t for t, r in not_streaming(health(api)).items() if r == "unassigned") == extra
        ),
        20,
        0.2,
        "over-capacity tokens named",
    )
    streaming, named, doc = streaming_now(api)
    unassigned = next(t for t in doc["subscriptions"]["tokens"] if t["reason"] == "unassigned")
    assert unassigned["detail"] == "no free capacity on any account"
    assert heard_exactly(ticks, streaming) == streaming

    # 3. Room frees up: ten streaming tokens go, every waiting token fits and ticks again.
    for token in first[:10]:
        assert api.delete(f"/subscriptions/{token}").status_code == 200
    remaining = set(first[10:]) | set(extra)
    wait_until(
        lambda: set(streaming_now(api)[0]) == set(sorted(remaining)[:CAP]),
        20,
        0.2,
        "waiting tokens streaming once they fit",
    )
    streaming, named, doc = streaming_now(api)
    assert named == dict.fromkeys(sorted(remaining)[CAP:], "mock_cap")
    assert heard_exactly(ticks, streaming) == streaming
    latest = set(map(int, _latest_options(settings)))
    assert latest == streaming, "the latest-tick hash serves exactly what streams"


def _subscribe_behind_the_apis_back(settings: Settings, tokens: list[int]) -> None:
    services = Services(settings)
    try:
        services.subscriptions.upsert_many(
            [SubscriptionRequest(t) for t in tokens], now_of(settings)
        )
    finally:
        services.close()


def _metrics(api: httpx.Client) -> str:
    return api.get("/metrics").text


def _latest_options(settings: Settings) -> list[bytes | str]:
    services = Services(settings)
    try:
        return list(services.redis.hkeys(services.channels().latest_options))
    finally:
        services.close()
