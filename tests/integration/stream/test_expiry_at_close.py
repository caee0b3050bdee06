"""An expiry afternoon on a real fleet: contracts stop at 15:30 and leave the fleet at once.

The fleet's clock is set so that the close of a Tuesday expiry (2026-06-16 15:30 IST)
comes half a minute after the test starts, whatever the real date and hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from producers.api import create_app
from tests.conftest import Fleet
from tests.support.instants import ist, offset_to
from tests.support.polling import wait_until
from tests.support.seed import now_of, seed_universe
from tests.support.ticks import TickCollector
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.runtime.clock import clock_from_settings
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(120)

CLOSE = ist(2026, 6, 16, 15, 30)
LEAD = 40.0  # fleet seconds before the close at the start: a fleet loaded 2x starts in 25 s
SWEEP = 2.0


def test_contracts_expire_at_the_close_and_are_evicted_within_one_sweep(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(
        feed="mock",
        mock_tick_interval_seconds=0.3,
        mock_expiry_sweep_seconds=SWEEP,
        **FAST_FLEET,
        clock_offset_seconds=offset_to(CLOSE) - LEAD,
    )
    clock = clock_from_settings(settings)
    options = seed_universe(settings, with_expired=False)
    today = now_of(settings).date()
    atm = [o for o in options if o.expiry == today and o.strike == 24000.0]
    later = [
        o for o in options if o.expiry is not None and o.expiry > today and o.strike == 24000.0
    ]
    expiring = {o.instrument_token for o in atm}
    staying = {later[0].instrument_token}
    assert len(expiring) == 2

    fleet = fleet_factory(settings)
    url = fleet.everything()
    ticks = TickCollector(settings.redis_url).start()
    listener = redis.Redis.from_url(settings.redis_url)
    events = listener.pubsub(ignore_subscribe_messages=True)
    events.subscribe(Channels.for_underlying(settings.channel_root, "NIFTY").events)
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            body = [{"instrument_token": t} for t in expiring | staying]
            assert api.post("/subscriptions", json=body).status_code == 200
            heard = lambda: {t["instrument_token"] for t in ticks.options()}  # noqa: E731
            before_close = CLOSE.timestamp() - clock.time()  # what is left of LEAD
            wait_until(
                lambda: expiring | staying <= heard(), before_close, 0.05, "ticks before the close"
            )
            assert clock.time() < CLOSE.timestamp(), "the fleet took too long to start"

            wait_until(lambda: clock.time() >= CLOSE.timestamp() + 1.0, LEAD + 5, 0.05)
            # Nothing was priced at or after the close.
            last = max(
                datetime.fromisoformat(str(t["timestamp"]))
                for t in ticks.options()
                if t["instrument_token"] in expiring
            )
            assert last < CLOSE
            # Deactivated within one sweep (plus the beat's scheduling slack).
            took = wait_until(
                lambda: _inactive(api, expiring), SWEEP + 3.0, 0.1, "expired subscriptions gone"
            )
            print(f"deactivated {took + 1.0:.2f}s after the close")
            quiet = time.time()
            time.sleep(1.0)
            after = {t["instrument_token"] for t in ticks.options(quiet)}
            assert after == staying
            health = api.get("/health").json()
            assert health["status"] == "ok", health["problems"]
            assert health["subscriptions"]["active"] == 1
            removed = [orjson.loads(m["data"]) for m in _drain(events)]
            removed = [e for e in removed if e["event_type"] == "subscription_removed"]
            assert {e["instrument_token"] for e in removed} == expiring
            assert {e["metadata"]["reason"] for e in removed} == {"contract expired"}
    finally:
        events.close()
        listener.close()
        ticks.stop()

    _refused_at_1531(settings, atm[0].instrument_token, today, expiring)


def _refused_at_1531(settings: Settings, token: int, today: date, expiring: set[int]) -> None:
    """At 15:31 the expired contract is refused, naming the instant it expired."""
    at_1531 = settings.model_copy(update={"clock_offset_seconds": offset_to(CLOSE) + 60})
    with TestClient(create_app(at_1531)) as late_api:
        answer = late_api.post("/subscriptions", json={"instrument_token": token})
        assert answer.status_code == 409
        [problem] = answer.json()["detail"]
        assert problem["detail"] == "contract expired at 2026-06-16T15:30:00+05:30"
        listed = late_api.get("/instruments", params={"expiry": today.isoformat()}).json()
        assert listed == []
        every = late_api.get(
            "/instruments", params={"expiry": today.isoformat(), "include_expired": "true"}
        ).json()
        assert {i["instrument_token"] for i in every} >= expiring


def _drain(pubsub: redis.client.PubSub, seconds: float = 1.0) -> list[dict[str, Any]]:
    """Every message waiting (and arriving within ``seconds``); the subscription's own
    confirmation reads as None and is skipped."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            out.append(message)
    return out


def _inactive(api: httpx.Client, tokens: set[int]) -> bool:
    rows = {r["instrument_token"]: r for r in api.get("/subscriptions").json()}
    return all(
        rows[t]["status"] == "inactive" and rows[t]["reason"] == "contract expired" for t in tokens
    )
