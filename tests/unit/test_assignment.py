import random

import pytest

from tickfleet.accounts.config import Account
from tickfleet.assignment.plan import Assignment, Configured, Demand, Placement, assign


def acct(name: str, connections: int = 3) -> Account:
    return Account(name, None, None, connections)


def loads(plan_placements: dict[int, Placement]) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for p in plan_placements.values():
        out[(p.account_id, p.connection)] = out.get((p.account_id, p.connection), 0) + 1
    return out


def test_capacity_per_connection_is_never_exceeded_and_overflow_is_reported() -> None:
    accounts = [acct("a", 2), acct("b", 1)]
    demands = [Demand(t) for t in range(1, 32)]
    plan = assign(demands, accounts, {}, per_connection=10)
    assert max(loads(plan.placements).values()) <= 10
    assert len(plan.placements) == 30
    assert list(plan.unassigned.values()) == ["no free capacity on any account"]


def test_new_tokens_spread_to_the_emptiest_account() -> None:
    plan = assign([Demand(t) for t in range(1, 13)], [acct("a"), acct("b")], {}, per_connection=100)
    per_account = {a: sum(1 for p in plan.placements.values() if p.account_id == a) for a in "ab"}
    assert per_account == {"a": 6, "b": 6}


def test_pinned_tokens_go_to_their_account_even_when_it_is_not_the_emptiest() -> None:
    previous = {t: Placement("a", 0) for t in range(1, 6)}
    demands = [Demand(t) for t in range(1, 6)] + [Demand(100, pinned_account="a")]
    plan = assign(demands, [acct("a"), acct("b")], previous, per_connection=100)
    assert plan.placements[100].account_id == "a"


def test_a_pin_displaces_unpinned_tokens_from_a_full_account() -> None:
    previous = {1: Placement("a", 0), 2: Placement("a", 0)}
    demands = [Demand(1), Demand(2), Demand(3, pinned_account="a")]
    plan = assign(demands, [acct("a", 1), acct("b", 1)], previous, per_connection=2)
    assert plan.placements[3] == Placement("a", 0)
    assert sorted(p.account_id for p in plan.placements.values()) == ["a", "a", "b"]
    assert plan.moved == 1


def test_pin_to_unknown_or_full_account_is_unassigned_with_a_reason() -> None:
    demands = [
        Demand(1, pinned_account="zz"),
        Demand(2, pinned_account="a"),
        Demand(3, pinned_account="a"),
    ]
    plan = assign(demands, [acct("a", 1)], {}, per_connection=1)
    assert plan.unassigned[1] == "pinned account zz is not configured"
    assert plan.unassigned[3] == "account a is full"
    assert plan.placements[2] == Placement("a", 0)


def test_a_pin_moves_a_token_placed_elsewhere_before() -> None:
    plan = assign(
        [Demand(1, pinned_account="b")],
        [acct("a"), acct("b")],
        {1: Placement("a", 2)},
        per_connection=10,
    )
    assert plan.placements[1].account_id == "b"
    assert plan.moved == 1


def test_existing_placements_are_kept_when_tokens_are_added_and_removed() -> None:
    rng = random.Random(7)
    accounts = [acct("a"), acct("b"), acct("c")]
    tokens = set(range(1, 301))
    plan = assign([Demand(t) for t in tokens], accounts, {}, per_connection=50)
    for _ in range(20):
        removed = set(rng.sample(sorted(tokens), 15))
        added = {rng.randint(1000, 100000) for _ in range(15)} - tokens
        tokens = (tokens - removed) | added
        before = plan.placements
        plan = assign([Demand(t) for t in tokens], accounts, before, per_connection=50)
        survivors = tokens & set(before)
        assert all(plan.placements[t] == before[t] for t in survivors), "a surviving token moved"
        assert plan.kept == len(survivors) and plan.moved == 0
        assert plan.removed == len(set(before) - tokens)
        assert max(loads(plan.placements).values()) <= 50


def test_shrinking_an_account_moves_only_what_no_longer_fits() -> None:
    before = assign(
        [Demand(t) for t in range(1, 31)], [acct("a", 3)], {}, per_connection=10
    ).placements
    plan = assign(
        [Demand(t) for t in range(1, 31)], [acct("a", 2), acct("b", 1)], before, per_connection=10
    )
    assert plan.moved == 10
    assert plan.kept == 20
    assert all(p.account_id == "b" for t, p in plan.placements.items() if before[t].connection == 2)


def test_assignment_round_trips_through_json_shape() -> None:
    a = Assignment(7, {1: Placement("a", 2)}, {1: "LTP"}, {9: "account a is full"})
    assert Assignment.from_dict(a.to_dict()) == a
    assert a.tokens_for("a") == {1: "LTP"}
    assert a.connections_for("a") == {2: [1]}
    assert a.streams() == ["account:a", "underlying:NIFTY"]
    both = Assignment(8, {1: Placement("a", 2)}, underlyings=("NIFTY", "SENSEX"), configured=("a",))
    assert Assignment.from_dict(both.to_dict()) == both
    assert both.streams() == ["account:a", "underlying:NIFTY", "underlying:SENSEX"]
    assert both.configuration == Configured(("NIFTY", "SENSEX"), ("a",))


@pytest.mark.parametrize("per_connection", [1, 7, 3000])
def test_every_demand_is_placed_or_explained(per_connection: int) -> None:
    demands = [Demand(t, pinned_account=("a" if t % 5 == 0 else None)) for t in range(1, 200)]
    plan = assign(demands, [acct("a", 1), acct("b", 2)], {}, per_connection)
    assert set(plan.placements) | set(plan.unassigned) == {d.token for d in demands}
    assert not set(plan.placements) & set(plan.unassigned)
