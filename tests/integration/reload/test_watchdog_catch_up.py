"""A subscription the API committed without a reload request is reloaded by the watchdog.

The API asks Redis first, but Redis can go away between the commit and the reload
request: the change is in the database and nothing else knows of it. The watchdog sees a
subscription changed after the assignment was saved and after the last reload started,
and requests the reload; once one has started, it asks no more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.seed import now_of, seed_universe
from tickfleet.config.settings import Settings
from tickfleet.control.presence import Presence, WorkerRecord
from tickfleet.control.watchdog import watch
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = pytest.mark.timeout(30)


class RecordingScheduler:
    def __init__(self) -> None:
        self.countdowns: list[float] = []

    def schedule(self, countdown: float) -> None:
        self.countdowns.append(countdown)


class RecordingStarter:
    def start(self, stream: str, worker: str | None = None) -> None:
        return None


@pytest.fixture
def fleet(make_settings: Callable[..., Settings]) -> Iterator[tuple[Services, list[int]]]:
    settings = make_settings()
    tokens = [o.instrument_token for o in seed_universe(settings)]
    services = Services(settings)
    now = services.clock.time()
    worker = WorkerRecord("stream@test", pid=1, concurrency=4, started_at=now, seen_at=now)
    Presence(services.redis, services.keys).announce(worker)
    yield services, tokens
    services.close()


def test_a_change_without_a_reload_request_is_reloaded_by_the_watchdog(
    fleet: tuple[Services, list[int]],
) -> None:
    services, tokens = fleet
    scheduler = RecordingScheduler()
    coordinator = services.coordinator(scheduler)
    starter = RecordingStarter()
    rebalance = services.rebalancer(starter)

    def pass_() -> None:
        launcher = services.launcher(starter)
        watch(
            services.assignments, services.subscriptions, launcher, coordinator, services.configured
        )

    def subscribe(token: int) -> None:
        # What the API commits; the reload request that should follow never happens.
        now = now_of(services.settings)
        services.subscriptions.upsert_many([SubscriptionRequest(token)], now)

    subscribe(tokens[0])
    assert coordinator.run_now(rebalance).kind == "ran"
    pass_()
    assert scheduler.countdowns == [], "nothing changed since the last reload"

    subscribe(tokens[1])
    pass_()
    assert len(scheduler.countdowns) == 1, "the committed change is reloaded"
    assert coordinator.status()["pending"] == 1

    assert coordinator.run_now(rebalance).kind == "ran"
    assignment = services.assignments.find()
    assert assignment is not None and tokens[1] in assignment.placements
    pass_()
    assert len(scheduler.countdowns) == 1, "a reload that started after the change is enough"


def test_a_fleet_restarted_with_other_accounts_or_underlyings_reloads_by_itself(
    make_settings: Callable[..., Settings],
) -> None:
    """Tried simulated (account sim-1), then started live with a Kite account and a second
    underlying: the watchdog's pass requests the reload, which moves every token off the
    account that no longer exists and starts the new underlying's index stream."""
    simulated = make_settings(underlyings="NIFTY")
    tokens = [o.instrument_token for o in seed_universe(simulated)][:4]
    before = Services(simulated)
    try:
        before.subscriptions.upsert_many(
            [SubscriptionRequest(t) for t in tokens], now_of(simulated)
        )
        assert (
            before.coordinator(RecordingScheduler())
            .run_now(before.rebalancer(RecordingStarter()))
            .kind
            == "ran"
        )
        first = before.assignments.find()
        assert first is not None and {p.account_id for p in first.placements.values()} == {"sim-1"}
    finally:
        before.close()
    live = make_settings(
        clock_offset_seconds=simulated.clock_offset_seconds,  # one fleet clock for both runs
        underlyings="NIFTY,SENSEX",
        kite_api_key="k",
        kite_access_token="t",
        kite_account_id="primary",
    )
    services = Services(live)
    try:
        scheduler, starter = RecordingScheduler(), RecordingStarter()
        coordinator = services.coordinator(scheduler)
        launcher = services.launcher(starter)
        watch(
            services.assignments, services.subscriptions, launcher, coordinator, services.configured
        )
        assert len(scheduler.countdowns) == 1, "the new configuration is reloaded"
        assert services.rebalancer(starter).in_sync() is False
        assert coordinator.run_now(services.rebalancer(starter)).kind == "ran"
        after = services.assignments.find()
        assert after is not None
        assert {after.placements[t].account_id for t in tokens} == {"primary"}
        assert after.streams() == ["account:primary", "underlying:NIFTY", "underlying:SENSEX"]
        assert services.rebalancer(starter).in_sync() is True
        watch(
            services.assignments, services.subscriptions, launcher, coordinator, services.configured
        )
        assert len(scheduler.countdowns) == 1, "in sync now: no further reload"
    finally:
        services.close()
