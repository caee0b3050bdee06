"""Expired contracts are evicted: subscriptions deactivated, streams told (real DB, Redis)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
import redis

from tests.support.instants import CALENDAR_MATRIX, Instant, ist
from tests.support.seed import expired_option, init_database, now_of, seed_universe
from tickfleet.config.settings import Settings
from tickfleet.instruments import OfflineUniverseSource, UniverseSpec
from tickfleet.instruments.model import Instrument
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
        pubsub.subscribe(services.keys.control_channel, services.channels().events)
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
        removed = heard[services.channels().events]
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


class _NoStreams:
    """A stream starter for a fleet with no stream worker: the reload starts nothing."""

    def start(self, stream: str, worker: str | None = None) -> None:
        raise AssertionError(f"no stream worker runs here, yet {stream} was started")


def _deactivated_by(
    path: str, settings: Settings, rows: list[Instrument], at: datetime
) -> set[int]:
    """The tokens that eviction (``evict``) or a reload (``reload``) deactivate at ``at``
    among active subscriptions to ``rows``, each on a database of its own."""
    init_database(settings)
    services = Services(settings)
    services.clock = ManualClock(at.timestamp())
    try:
        services.registry.replace_all(rows, at)
        services.subscriptions.upsert_many(
            [SubscriptionRequest(r.instrument_token) for r in rows], at
        )
        if path == "evict":
            services.evictor().run()
        else:
            services.rebalancer(_NoStreams())()
        return {r.instrument_token for r in rows} - {
            s.token for s in services.subscriptions.active()
        }
    finally:
        services.close()


@pytest.mark.parametrize(
    ("second", "expired"), [(59, False), (60, True)], ids=["15:29:59", "15:30:00"]
)
def test_eviction_and_a_reload_agree_at_the_close_of_the_expiry_day(
    make_settings: Callable[..., Settings], tmp_path: Path, second: int, expired: bool
) -> None:
    """A contract expiring today is expired from the close on, by both paths alike."""
    at = ist(2026, 6, 16, 15, 29) + timedelta(seconds=second)
    spec = UniverseSpec.from_settings(make_settings(mock_strikes_each_side=2))
    rows = [i for i in OfflineUniverseSource(spec).fetch(at.date()) if i.is_option]
    today = {i.instrument_token for i in rows if i.expiry == at.date()}
    assert today and len(today) < len(rows), "the rows must mix today's expiry and later ones"
    found = {
        path: _deactivated_by(
            path, make_settings(database_url=f"sqlite:///{tmp_path}/{path}.db"), rows, at
        )
        for path in ("evict", "reload")
    }
    assert found["evict"] == found["reload"] == (today if expired else set())
