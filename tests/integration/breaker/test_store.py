"""The Lua scripts on a real redis-server: versions, the fleet window, probe reservations."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from redis.client import PubSub

from tickfleet.breaker import BreakerConfig, CircuitState
from tickfleet.breaker.report import Claim, Report, StoreView
from tickfleet.breaker.store import BreakerStore
from tickfleet.names import Keys

pytestmark = pytest.mark.timeout(30)

CONFIG = BreakerConfig(
    failure_threshold=3, window_seconds=10.0, half_open_max_attempts=2, probe_reservation_ttl=5.0
)
KEYS = Keys("test:")
NOTHING = Report(None, (), 0)


def store(client: redis.Redis, holder: str) -> BreakerStore:
    return BreakerStore(client, KEYS, "publish", CONFIG, holder)


@pytest.fixture
def a(redis_client: redis.Redis) -> BreakerStore:
    return store(redis_client, "a")


@pytest.fixture
def b(redis_client: redis.Redis) -> BreakerStore:
    return store(redis_client, "b")


def failures(*times: float) -> Report:
    return Report(None, tuple((at, i) for i, at in enumerate(times)), 0)


def open_claim(base: int, at: float) -> Report:
    return Report(Claim(base, CircuitState.OPEN, at, at), (), 0)


def test_an_empty_store_reads_closed_at_version_zero(a: BreakerStore) -> None:
    assert a.sync(NOTHING, time.time()) == StoreView(CircuitState.CLOSED, 0, None, 0.0, 0)


def test_failures_from_several_workers_trip_the_fleet_inside_the_window(
    a: BreakerStore, b: BreakerStore, redis_client: redis.Redis
) -> None:
    now = time.time()
    assert a.sync(failures(now - 1, now), now).failures == 2

    with PubSub(redis_client.connection_pool, ignore_subscribe_messages=True) as events:
        events.subscribe(a.channel)
        events.get_message(timeout=1)
        view = b.sync(failures(now), now)
        message = events.get_message(timeout=1)

    assert view.state is CircuitState.OPEN
    assert view.opened_at == now
    assert view.version >= int(now * 1000)
    assert message is not None and b'"state":"open"' in message["data"]


def test_failures_older_than_the_window_do_not_count(a: BreakerStore, b: BreakerStore) -> None:
    now = time.time()
    a.sync(failures(now - 10.5, now - 10.2), now - 0.5)
    view = b.sync(failures(now - 9.0, now), now)
    assert view.state is CircuitState.CLOSED
    assert view.failures == 2


def test_a_retried_report_does_not_count_its_failures_twice(a: BreakerStore) -> None:
    now = time.time()
    report = failures(now, now)
    a.sync(report, now)
    assert a.sync(report, now).failures == 2


def test_a_claim_on_a_stale_version_loses(a: BreakerStore, b: BreakerStore) -> None:
    now = time.time()
    opened = a.sync(open_claim(0, now), now)
    assert opened.state is CircuitState.OPEN

    closed = a.sync(Report(Claim(opened.version, CircuitState.CLOSED, now, None), (), 0), now)
    stale = b.sync(Report(Claim(opened.version, CircuitState.CLOSED, now, None), (), 0), now)
    stale_reopen = b.sync(Report(Claim(opened.version, CircuitState.OPEN, now, now), (), 0), now)

    assert closed.state is CircuitState.CLOSED and closed.version > opened.version
    assert stale == closed
    assert stale_reopen == closed  # not newer than the close it missed


def test_an_open_claim_newer_than_the_last_close_reopens(a: BreakerStore) -> None:
    now = time.time()
    opened = a.sync(open_claim(0, now - 2), now - 2)
    closed = a.sync(
        Report(Claim(opened.version, CircuitState.CLOSED, now - 1, None), (), 0), now - 1
    )

    reopened = a.sync(open_claim(opened.version, now), now)

    assert reopened.state is CircuitState.OPEN
    assert reopened.version > closed.version
    assert reopened.opened_at == now


@pytest.fixture
def opened(a: BreakerStore) -> Iterator[StoreView]:
    now = time.time()
    yield a.sync(open_claim(0, now), now)


def test_probe_reservations_are_limited_fleet_wide(
    redis_client: redis.Redis, opened: StoreView
) -> None:
    holders = [store(redis_client, f"w{i}") for i in range(5)]
    now = time.time()

    granted = [holder.reserve_probe(opened.version, now) for holder in holders]

    assert granted == [True, True, False, False, False]
    assert holders[0].reserve_probe(opened.version, now)  # a holder may renew its own


def test_an_expired_reservation_frees_its_probe(
    redis_client: redis.Redis, opened: StoreView
) -> None:
    first, second, third = (store(redis_client, name) for name in ("p1", "p2", "p3"))
    now = time.time()
    assert first.reserve_probe(opened.version, now)
    assert second.reserve_probe(opened.version, now)
    assert not third.reserve_probe(opened.version, now + CONFIG.probe_reservation_ttl - 0.1)

    assert third.reserve_probe(opened.version, now + CONFIG.probe_reservation_ttl + 0.1)


def test_reservations_need_the_current_open_version(a: BreakerStore, opened: StoreView) -> None:
    now = time.time()
    assert not a.reserve_probe(opened.version - 1, now)
    closed = a.sync(Report(Claim(opened.version, CircuitState.CLOSED, now, None), (), 0), now)
    assert not a.reserve_probe(closed.version, now)
