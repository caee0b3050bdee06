"""Expired contracts are evicted: subscriptions deactivated, streams told (real DB, Redis)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import orjson
import pytest
import redis

from tests.support.instants import CALENDAR_MATRIX, Instant
from tests.support.seed import expired_option, init_database, now_of, seed_universe
from tickfleet.config.settings import Settings
from tickfleet.instruments import OfflineUniverseSource, UniverseSpec
from tickfleet.runtime.clock import ManualClock
from tickfleet.subscriptions.store import Status, SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = pytest.mark.timeout(30)


def test_expired_subscriptions_are_deactivated_and_announced(
    make_settings: Callable[..., Settings], database_url: str, redis_client: redis.Redis
) -> None:
    settings = make_settings(database_url=database_url)
    live = seed_universe(settings)[:2]
    expired = expired_option(today=now_of(settings).date())
    services = Services(settings)
    try:
        services.subscriptions.upsert_many(
            [SubscriptionRequest(expired.instrument_token)]
            + [SubscriptionRequest(o.instrument_token) for o in live],
            now_of(settings),
        )
        pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(services.keys.control_channel, services.channels.events)
        pubsub.get_message(timeout=1)
        pubsub.get_message(timeout=1)

        assert services.evictor().run() == [expired.instrument_token]
        heard = {}
        for _ in range(2):
            message = pubsub.get_message(timeout=2)
            assert message is not None
            heard[message["channel"].decode()] = orjson.loads(message["data"])
        assert heard[services.keys.control_channel] == {
            "type": "evict",
            "tokens": [expired.instrument_token],
            "reason": "expired",
        }
        removed = heard[services.channels.events]
        assert abs(removed.pop("timestamp") - now_of(settings).timestamp()) < 5
        assert removed == {
            "event_type": "subscription_removed",
            "instrument_token": expired.instrument_token,
            "metadata": {
                "tradingsymbol": expired.tradingsymbol,
                "segment": "NFO-OPT",
                "reason": "contract expired",
            },
        }
        row = services.subscriptions.get(expired.instrument_token)
        assert (
            row is not None and row.status is Status.INACTIVE and row.reason == "contract expired"
        )
        assert {s.token for s in services.subscriptions.active()} == {
            o.instrument_token for o in live
        }
        assert services.evictor().run() == []  # idempotent
        pubsub.close()
    finally:
        services.close()


@pytest.mark.parametrize("instant", CALENDAR_MATRIX, ids=lambda i: i.name)
def test_eviction_at_frozen_instants(
    make_settings: Callable[..., Settings], instant: Instant, redis_client: redis.Redis
) -> None:
    """At each instant exactly the contracts whose expiry day is over are deactivated."""
    settings = make_settings(mock_strikes_each_side=2, mock_weekly_expiries=3)
    init_database(settings)
    services = Services(settings)
    services.clock = ManualClock(instant.at.timestamp())
    try:
        source = OfflineUniverseSource(UniverseSpec.from_settings(settings))
        today = instant.at.date()
        listed = {
            i.instrument_token: i
            for i in source.fetch(today - timedelta(days=7)) + source.fetch(today)
            if i.is_option
        }
        services.registry.replace_all(listed.values(), instant.at)
        services.subscriptions.upsert_many(
            [SubscriptionRequest(t) for t in sorted(listed)], instant.at
        )
        expected = sorted(
            t
            for t, i in listed.items()
            if i.expiry is not None and i.expiry <= instant.last_expired_day
        )
        assert expected, "the instant must have expired contracts to evict"
        assert services.evictor().run() == expected
        assert {s.token for s in services.subscriptions.active()} == set(listed) - set(expected)
    finally:
        services.close()
