"""The predecessor's consumers keep working, checked on a real fleet in simulated mode.

A consumer written from the facts of the predecessor's code (``tests/support/consumer``,
not tickfleet's builders) listens for a minute and must accept every tick it hears; the
predecessor's subscribe call gets 201 and the record; the events it listens for arrive
in order, each after the change it announces is visible through the API.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.conftest import Fleet
from tests.support.consumer import assert_current_ts, parse_option, parse_underlying
from tests.support.polling import wait_until
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.runtime.clock import clock_from_settings
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(180)

LISTEN = 60.0  # seconds the consumer listens to the fleet


class EventLog:
    """Every event on the events channel, each with what GET /subscriptions said on hearing it."""

    def __init__(self, url: str, api: str) -> None:
        self.heard: list[tuple[dict[str, Any], dict[int, str]]] = []
        self._stop = threading.Event()
        self._client = redis.Redis.from_url(url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(Channels().events)
        self._pubsub.get_message(timeout=1)
        self._api = api
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(base_url=self._api, timeout=10) as api:
            while not self._stop.is_set():
                message = self._pubsub.get_message(timeout=0.2)
                if message is None:
                    continue
                rows = api.get("/subscriptions", params={"limit": 1000}).json()
                statuses = {r["instrument_token"]: r["status"] for r in rows}
                self.heard.append((orjson.loads(message["data"]), statuses))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()
        self._client.close()


def test_the_predecessors_consumer_subscribes_hears_and_unsubscribes(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(
        feed="mock",
        mock_tick_interval_seconds=0.5,
        **FAST_FLEET,
    )
    clock = clock_from_settings(settings)
    options = seed_universe(settings, with_expired=False)
    nearest = min(o.expiry for o in options if o.expiry is not None)
    chain = [o for o in options if o.expiry == nearest][:6]
    token = chain[0].instrument_token
    fleet = fleet_factory(settings)
    url = fleet.everything()
    ticks = TickCollector(settings.redis_url).start()
    events = EventLog(settings.redis_url, url)
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            # The consumer's subscribe call: one object, the predecessor's names.
            body = {"instrument_token": token, "requested_mode": "FULL", "account_id": "sim-1"}
            created = api.post("/subscriptions", json=body)
            assert created.status_code == 201, created.text
            record = created.json()
            assert (record["instrument_token"], record["status"]) == (token, "active")
            assert (record["requested_mode"], record["account_id"]) == ("FULL", "sim-1")
            others = [{"instrument_token": o.instrument_token} for o in chain[1:]]
            assert api.post("/subscriptions", json=others).status_code == 200

            heard_from = time.time()
            time.sleep(LISTEN)
            checked = _every_tick_parses(ticks, heard_from, settings, clock.time() - time.time())
            assert token in checked["tokens"]
            print(f"the predecessor's consumer parsed {checked['count']} ticks in {LISTEN:.0f}s")

            assert api.delete(f"/subscriptions/{token}").status_code == 200
            wait_until(lambda: len(_of(events, token)) == 2, 10, 0.1, "both events")
            streamed = lambda: _streamed_tokens(api, "account:sim-1")  # noqa: E731
            wait_until(lambda: streamed() == len(chain) - 1, 15, 0.1, "the next assignment")
            stopped = time.time()  # the stream runs the assignment without the token
            time.sleep(1.0)
            after = {t["token"] for t in ticks.options(stopped)}
            assert token not in after and after, "the token stopped; the others tick on"
    finally:
        events.stop()
        ticks.stop()
    created_event, deleted_event = _of(events, token)
    assert created_event[0]["event_type"] == "subscription_created"
    assert created_event[0]["metadata"]["account_id"] == "sim-1"
    assert created_event[1][token] == "active", "heard after the subscription was visible"
    assert deleted_event[0]["event_type"] == "subscription_deleted"
    assert deleted_event[1][token] == "inactive", "heard after the deletion was visible"


def _streamed_tokens(api: httpx.Client, stream: str) -> int | None:
    """How many tokens the stream last reported streaming (about once a second)."""
    status = api.get("/health").json()["streams"].get(stream)
    return None if status is None else int(status["tokens"])


def _of(events: EventLog, token: int) -> list[tuple[dict[str, Any], dict[int, str]]]:
    return [e for e in events.heard if e[0]["instrument_token"] == token]


def _every_tick_parses(
    ticks: TickCollector, since: float, settings: Settings, offset: float
) -> dict[str, Any]:
    """Parse every tick heard since ``since`` as the consumer would; ts the current time."""
    channels = Channels.for_underlying(settings.channel_root, "NIFTY")
    heard = ticks.snapshot(since)
    underlying = [parse_underlying(r.tick) for r in heard if r.channel == channels.underlying]
    options = [(r, parse_option(r.tick)) for r in heard if r.channel == channels.options]
    assert underlying and options
    for received in heard:
        assert_current_ts(received.tick, received.at + offset)
    symbols = {u.symbol for u in underlying}
    assert symbols == {"NIFTY"}
    assert {o.symbol for _, o in options} <= symbols, "options link to their underlying"
    closes = [u.close for u in underlying]
    assert len(set(closes)) > 1, "close is the moving current price, not yesterday's"
    return {"count": len(heard), "tokens": {o.token for _, o in options}}
