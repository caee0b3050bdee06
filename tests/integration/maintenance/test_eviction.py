"""Expired contracts are evicted: subscriptions deactivated, streams told (real DB, Redis)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import orjson
import pytest
import redis

from tests.support.seed import expired_option, seed_universe
from tickfleet.services import Services
from tickfleet.settings import Settings
from tickfleet.subscriptions import Status, SubscriptionRequest

pytestmark = pytest.mark.timeout(30)


def test_expired_subscriptions_are_deactivated_and_announced(
    make_settings: Callable[..., Settings], database_url: str, redis_client: redis.Redis
) -> None:
    settings = make_settings(database_url=database_url)
    live = seed_universe(settings)[:2]
    expired = expired_option()
    services = Services(settings)
    try:
        services.subscriptions.upsert_many(
            [SubscriptionRequest(expired.instrument_token)]
            + [SubscriptionRequest(o.instrument_token) for o in live],
            datetime.now(UTC),
        )
        pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(services.keys.control_channel)
        pubsub.get_message(timeout=1)

        assert services.evictor().run() == [expired.instrument_token]
        message = pubsub.get_message(timeout=2)
        assert message is not None
        assert orjson.loads(message["data"]) == {
            "type": "evict",
            "tokens": [expired.instrument_token],
            "reason": "expired",
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
