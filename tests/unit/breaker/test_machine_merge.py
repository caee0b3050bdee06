"""How one worker merges the fleet's state with its own decisions (no Redis: pure rules)."""

from __future__ import annotations

import pytest

from tickfleet.breaker import BreakerConfig, CircuitState
from tickfleet.breaker.machine import BreakerMachine, Claim, Report, StoreView
from tickfleet.runtime.clock import ManualClock

pytestmark = pytest.mark.timeout(10)

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
CONFIG = BreakerConfig(
    failure_threshold=3,
    window_seconds=10.0,
    recovery_timeout=5.0,
    half_open_max_attempts=2,
    probe_reservation_ttl=4.0,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def machine(clock: ManualClock) -> BreakerMachine:
    shared = BreakerMachine(CONFIG, clock, "shared")
    shared.adopt(view(CLOSED, 100, changed_at=clock.time() - 60))
    return shared


def view(
    state: CircuitState,
    version: int,
    opened_at: float | None = None,
    changed_at: float = 0.0,
    failures: int = 0,
) -> StoreView:
    return StoreView(state, version, opened_at, changed_at, failures)


def trip(machine: BreakerMachine) -> None:
    for _ in range(CONFIG.failure_threshold):
        machine.failed(None)
    assert machine.state is OPEN


def test_a_local_trip_leaves_a_claim_on_the_version_it_saw(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    trip(machine)

    report = machine.take_report()

    assert report.claim == Claim(100, OPEN, clock.time(), clock.time())
    assert [sequence for _, sequence in report.failures] == [1, 2, 3]
    assert machine.version == 100


def test_the_confirmed_claim_is_dropped_without_a_second_transition(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    trip(machine)
    machine.transitions.clear()

    machine.adopt(view(OPEN, 101, opened_at=clock.time(), changed_at=clock.time()))

    assert machine.claim is None
    assert machine.version == 101
    assert machine.state is OPEN
    assert not machine.transitions


def test_a_remote_trip_is_followed_and_its_recovery_counts_from_its_opened_at(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.adopt(view(OPEN, 101, opened_at=clock.time() - 3.0, changed_at=clock.time() - 3.0))

    assert machine.state is OPEN
    assert machine.opened_at == clock.time() - 3.0
    clock.advance(1.99)
    assert not machine.allow()
    clock.advance(0.01)
    machine.tick()
    assert machine.state is HALF_OPEN


def test_a_newer_remote_transition_beats_a_stale_claim(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.adopt(view(OPEN, 101, opened_at=clock.time() - 5.0, changed_at=clock.time() - 5.0))
    machine.set_source("local")  # let the probe through without a reservation
    assert machine.allow()
    machine.succeeded()  # our probe closed it locally...
    assert machine.claim is not None and machine.claim.state is CLOSED

    # ...but another worker's failed probe reopened the fleet first.
    machine.set_source("shared")
    machine.adopt(view(OPEN, 102, opened_at=clock.time(), changed_at=clock.time()))

    assert machine.claim is None
    assert machine.state is OPEN
    assert machine.opened_at == clock.time()


def test_an_open_made_while_the_store_was_away_wins_over_an_older_close(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.set_source("local")
    trip(machine)
    tripped_at = clock.time()
    clock.advance(1.0)
    machine.set_source("shared")

    machine.adopt(view(CLOSED, 105, changed_at=tripped_at - 1.0))

    assert machine.state is OPEN
    assert machine.claim == Claim(105, OPEN, tripped_at, tripped_at)
    assert machine.wake_requested


def test_a_close_newer_than_the_local_open_wins(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    trip(machine)

    machine.adopt(view(CLOSED, 105, changed_at=clock.time() + 0.5))

    assert machine.state is CLOSED
    assert machine.claim is None


def test_a_store_that_lost_its_state_gets_the_local_open_again(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    trip(machine)
    machine.adopt(view(OPEN, 101, opened_at=clock.time(), changed_at=clock.time()))
    assert machine.claim is None

    machine.adopt(view(CLOSED, 0))

    assert machine.state is OPEN
    assert machine.version == 0
    assert machine.claim == Claim(0, OPEN, clock.time(), clock.time())


def test_a_closed_claim_on_a_closed_store_is_dropped(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.set_source("local")
    trip(machine)
    clock.advance(5.0)
    assert machine.allow()
    machine.succeeded()
    machine.set_source("shared")

    machine.adopt(view(CLOSED, 100))

    assert machine.claim is None
    assert machine.state is CLOSED


def test_shared_half_open_needs_a_reserved_permit(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.adopt(view(OPEN, 101, opened_at=clock.time() - 5.0, changed_at=clock.time() - 5.0))

    assert not machine.allow()  # half-open, but no permit yet: ask for a sync round
    assert machine.state is HALF_OPEN
    assert machine.wake_requested
    assert machine.needs_probe()

    machine.grant_probe(100, clock.monotonic())  # stale version: ignored
    assert not machine.allow()
    machine.grant_probe(101, clock.monotonic())
    assert machine.allow()
    assert not machine.allow()
    assert not machine.needs_probe()  # our probe is out; its reservation still holds

    clock.advance(CONFIG.probe_reservation_ttl)
    assert machine.needs_probe()  # the probe never reported: reserve again


def test_an_unused_permit_lapses_before_its_reservation(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.adopt(view(OPEN, 101, opened_at=clock.time() - 5.0, changed_at=clock.time() - 5.0))
    machine.allow()
    machine.grant_probe(101, clock.monotonic())

    clock.advance(CONFIG.probe_reservation_ttl * 0.9)

    assert not machine.allow()


def test_deciding_alone_in_half_open_uses_what_is_left_of_the_budget(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.adopt(view(OPEN, 101, opened_at=clock.time() - 5.0, changed_at=clock.time() - 5.0))
    machine.allow()
    machine.grant_probe(101, clock.monotonic())
    assert machine.allow()

    machine.set_source("local")

    assert [machine.allow() for _ in range(3)] == [True, False, False]


def test_a_failed_sync_round_keeps_its_outcomes_for_the_next(
    machine: BreakerMachine,
) -> None:
    machine.succeeded()
    machine.failed(None)
    report = machine.take_report()
    machine.failed(None)

    machine.restore(report)

    again = machine.take_report()
    assert [sequence for _, sequence in again.failures] == [1, 2]
    assert again.successes == 1
    assert again.last_success_at == report.last_success_at is not None
    assert machine.take_report() == Report(None, (), 0, None)


def test_a_success_drops_the_failures_before_it_from_every_report(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.failed(None)
    machine.failed(None)
    machine.succeeded()  # the outage those two belonged to is over
    clock.advance(1.0)
    machine.failed(None)
    report = machine.take_report()
    assert [sequence for _, sequence in report.failures] == [3]
    assert report.last_success_at == clock.time() - 1.0

    machine.failed(None)
    machine.succeeded()  # after the round that failed: its failure is over too
    machine.restore(report)

    again = machine.take_report()
    assert again.failures == ()
    assert again.successes == 2
    assert again.last_success_at == clock.time()


def test_fleet_failures_count_towards_the_failure_count(
    machine: BreakerMachine, clock: ManualClock
) -> None:
    machine.failed(None)

    machine.adopt(view(CLOSED, 100, changed_at=clock.time() - 60, failures=2))

    assert machine.failure_count() == 2
    assert machine.state is CLOSED
