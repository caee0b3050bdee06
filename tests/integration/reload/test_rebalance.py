"""The reload body against a real database and Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from tests.support.seed import expired_option, init_database, now_of, seed_universe
from tickfleet.config.settings import Settings
from tickfleet.control.presence import Presence, WorkerRecord
from tickfleet.control.rebalance import Rebalancer, RefusedReloadError
from tickfleet.subscriptions.store import Mode, Status, SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = pytest.mark.timeout(30)


class EventListener:
    """The events channel, subscribed before the reload runs."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self._pubsub.get_message(timeout=1)

    def heard(self) -> list[dict[str, Any]]:
        out = []
        while (message := self._pubsub.get_message(timeout=0.5)) is not None:
            out.append(orjson.loads(message["data"]))
        self._pubsub.close()
        return out


class RecordingStarter:
    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, stream: str, worker: str | None = None) -> None:
        self.started.append(stream)


@pytest.fixture
def world(
    make_settings: Callable[..., Settings], database_url: str
) -> Iterator[tuple[Services, Rebalancer, RecordingStarter, list[int]]]:
    settings = make_settings(database_url=database_url)
    tokens = [o.instrument_token for o in seed_universe(settings)]
    services = Services(settings)
    starter = RecordingStarter()
    now = services.clock.time()
    # A live stream worker with room: the launcher starts streams only where one runs them.
    worker = WorkerRecord("stream@test", pid=1, concurrency=4, started_at=now, seen_at=now)
    Presence(services.redis, services.keys).announce(worker)
    yield services, services.rebalancer(starter), starter, tokens
    services.close()


def subscribe(services: Services, *tokens: int, mode: Mode = Mode.FULL) -> None:
    requests = [SubscriptionRequest(t, mode) for t in tokens]
    services.subscriptions.upsert_many(requests, now_of(services.settings))


def test_a_reload_assigns_persists_announces_and_starts_streams(
    world: tuple[Services, Rebalancer, RecordingStarter, list[int]], redis_client: redis.Redis
) -> None:
    services, rebalance, starter, tokens = world
    subscribe(services, *tokens[:5], expired_option().instrument_token, 999_999_999)
    events = EventListener(redis_client, services.channels().events)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(services.keys.control_channel)
    pubsub.get_message(timeout=1)
    summary = rebalance()
    assert summary["version"] == 1 and summary["tokens"] == 5 and summary["deactivated"] == 2
    assert starter.started == ["account:sim-1", "underlying:NIFTY"]
    message = pubsub.get_message(timeout=2)
    assert message is not None and orjson.loads(message["data"]) == {
        "type": "assignment",
        "version": 1,
    }
    rows = {s.token: s for s in services.subscriptions.find()}
    assert all(rows[t].account == "sim-1" and rows[t].connection is not None for t in tokens[:5])
    assert rows[999_999_999].status is Status.INACTIVE
    assert rows[999_999_999].reason == "instrument no longer listed"
    assert rows[expired_option().instrument_token].reason == "contract expired"
    assert rebalance.in_sync()
    pubsub.close()
    removed = {
        e["instrument_token"]: (e["event_type"], e["metadata"]["reason"]) for e in events.heard()
    }
    assert removed == {
        999_999_999: ("subscription_removed", "instrument no longer listed"),
        expired_option().instrument_token: ("subscription_removed", "contract expired"),
    }


def test_an_unchanged_reload_keeps_the_version_and_a_change_bumps_it(
    world: tuple[Services, Rebalancer, RecordingStarter, list[int]],
) -> None:
    services, rebalance, _, tokens = world
    subscribe(services, *tokens[:3])
    assert rebalance()["version"] == 1
    assert rebalance()["version"] == 1
    subscribe(services, tokens[0], mode=Mode.LTP)
    assert not rebalance.in_sync(), "a mode change is drift until reloaded"
    assert rebalance()["version"] == 2
    assert services.assignments.load().modes[tokens[0]] == "LTP"
    services.subscriptions.deactivate([tokens[1]], "unsubscribed", now_of(services.settings))
    assert not rebalance.in_sync()
    summary = rebalance()
    assert (summary["version"], summary["removed"], summary["kept"]) == (3, 1, 2)


def test_a_reload_refuses_an_empty_registry(
    make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    settings = make_settings()
    init_database(settings)
    services = Services(settings)
    try:
        with pytest.raises(RefusedReloadError, match="registry is empty"):
            services.rebalancer(RecordingStarter())()
        assert redis_client.get(services.keys.assignment) is None
    finally:
        services.close()


def test_a_reload_refuses_a_database_the_assignment_did_not_come_from(
    world: tuple[Services, Rebalancer, RecordingStarter, list[int]],
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    redis_client: redis.Redis,
) -> None:
    services, rebalance, _, tokens = world
    subscribe(services, *tokens[:3])
    rebalance()
    saved = redis_client.get(services.keys.assignment)
    other = make_settings(database_url=f"sqlite:///{tmp_path}/other.db")
    seed_universe(other)  # a database of its own, with instruments and no subscriptions
    stranger = Services(other)
    try:
        with pytest.raises(RefusedReloadError, match="not the one the fleet's assignment"):
            stranger.rebalancer(RecordingStarter())()
        assert redis_client.get(services.keys.assignment) == saved
        moving = stranger.rebalancer(RecordingStarter())
        moving.switch_database = True  # an operator moving the fleet on purpose
        assert moving()["tokens"] == 0
        assert services.assignments.load().database == stranger.database_id
    finally:
        stranger.close()
