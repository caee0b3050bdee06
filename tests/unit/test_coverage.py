"""The verdict on each active subscription: streaming, or not and why, and when it matters."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from tests.support.instants import ist
from tests.unit.instruments.samples import OPTION
from tickfleet.assignment.plan import Assignment, Placement
from tickfleet.health.coverage import Grace, coverage
from tickfleet.instruments.model import INDEX_SEGMENT, Instrument
from tickfleet.market.hours import MarketHours
from tickfleet.subscriptions.store import Mode, Status, Subscription

NOW = ist(2026, 6, 10, 11, 0)
GRACE = Grace(pending=10.0, expired=300.0)
HOURS = MarketHours()


def listing(
    symbol: str, expiry: date | None = date(2026, 6, 16), index: bool = False
) -> Instrument:
    """A registry row: an index when ``index``, else an option expiring on ``expiry``."""
    segment = INDEX_SEGMENT if index else OPTION.segment
    return replace(OPTION, tradingsymbol=symbol, expiry=expiry, segment=segment)


def sub(token: int, updated: datetime = NOW - timedelta(hours=1)) -> Subscription:
    return Subscription(token, Mode.FULL, None, Status.ACTIVE, None, None, None, updated, updated)


def assignment(placed: dict[int, str], unassigned: dict[int, str] | None = None) -> Assignment:
    return Assignment(
        version=3,
        placements={t: Placement(a, 0) for t, a in placed.items()},
        unassigned=unassigned or {},
        saved_at=NOW.timestamp() - 60,
    )


def stream(**status: Any) -> dict[str, Any]:
    healthy: dict[str, Any] = {
        "lease_holder": "someone",
        "problem": None,
        "mode": "mock",
        "assignment_version": 3,
        "assignment_saved_at": NOW.timestamp() - 60,
    }
    return {**healthy, **status}


def verdicts(
    subs: list[Subscription],
    listed: dict[int, Instrument],
    current: Assignment | None,
    streams: dict[str, dict[str, Any]],
    excluded: dict[str, dict[int, str]] | None = None,
    now: datetime = NOW,
) -> dict[int, tuple[str, bool]]:
    found = coverage(subs, listed, current, streams, excluded or {}, HOURS, now, GRACE)
    return {n.token: (n.reason, n.problem) for n in found.not_streaming}


LISTED = {t: listing(f"NIFTY{t}CE") for t in range(1, 10)}


def test_a_placed_token_on_a_healthy_stream_is_streaming() -> None:
    result = coverage(
        [sub(1)],
        LISTED,
        assignment({1: "a"}),
        {"account:a": stream()},
        {},
        HOURS,
        NOW,
        GRACE,
    )
    assert (result.active, result.streaming, result.not_streaming) == (1, 1, ())


def test_each_reason_in_order() -> None:
    current = assignment({3: "a", 4: "b", 5: "c", 6: "a"}, unassigned={2: "no free capacity"})
    streams = {
        "account:a": stream(),
        "account:b": stream(lease_holder=None),
        "account:c": stream(mode="idle"),
    }
    listed = {**LISTED, 7: listing("OLD", expiry=date(2026, 6, 9))}
    listed.pop(8)
    found = verdicts(
        [sub(t) for t in (2, 3, 4, 5, 6, 7, 8)],
        listed,
        current,
        streams,
        {"account:a": {6: "mock_cap"}},
    )
    assert found == {
        2: ("unassigned", True),
        4: ("no_stream", True),
        5: ("idle", False),  # simulation off outside market hours: nothing should stream
        6: ("mock_cap", True),
        7: ("expired", True),  # expired 2026-06-09 15:30, well past the eviction's grace
        8: ("unlisted", True),
    }


@pytest.mark.parametrize(("age", "problem"), [(5.0, False), (15.0, True)])
def test_pending_is_a_problem_only_past_its_grace(age: float, problem: bool) -> None:
    fresh = sub(9, updated=NOW - timedelta(seconds=age))
    assert verdicts([fresh], LISTED, assignment({}), {}) == {9: ("pending", problem)}


def test_a_stream_that_has_not_applied_the_assignment_is_pending() -> None:
    current = assignment({1: "a"})
    behind = {"account:a": stream(assignment_version=2)}
    assert verdicts([sub(1)], LISTED, current, behind) == {1: ("pending", True)}
    restarted = {"account:a": stream(assignment_saved_at=1.0)}  # same number, older run
    assert verdicts([sub(1)], LISTED, current, restarted) == {1: ("pending", True)}


def test_a_missing_assignment_is_a_problem_at_once() -> None:
    assert verdicts([sub(1)], LISTED, None, {}) == {1: ("pending", True)}


def test_a_contract_just_expired_is_not_a_problem_until_eviction_is_overdue() -> None:
    today = {1: listing("TODAY", expiry=date(2026, 6, 16))}
    at = ist(2026, 6, 16, 15, 31)
    assert verdicts([sub(1)], today, assignment({1: "a"}), {}, now=at) == {1: ("expired", False)}
    late = ist(2026, 6, 16, 15, 40)
    assert verdicts([sub(1)], today, assignment({1: "a"}), {}, now=late) == {1: ("expired", True)}


def test_index_tokens_stream_with_their_own_underlying() -> None:
    nifty = {1: replace(listing("NIFTY 50", expiry=None, index=True), underlying="NIFTY")}
    assert verdicts([sub(1)], nifty, assignment({1: "a"}), {"underlying:NIFTY": stream()}) == {}
    assert verdicts([sub(1)], nifty, assignment({1: "a"}), {}) == {1: ("no_stream", True)}
    bank = {1: listing("NIFTY BANK", expiry=None, index=True)}  # BANKNIFTY's
    only_nifty = {"underlying:NIFTY": stream()}
    assert verdicts([sub(1)], bank, assignment({1: "a"}), only_nifty) == {1: ("no_stream", True)}
