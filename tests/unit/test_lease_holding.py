from tickfleet.runtime.lease import Holding


def test_a_refused_renewal_loses_the_lease_at_once() -> None:
    holding = Holding(ttl_seconds=5.0, now=0.0)
    holding.record(False, now=1.0)
    assert holding.lost and not holding.certain(1.0)


def test_unknown_outcomes_are_tolerated_only_until_the_ttl_runs_out() -> None:
    holding = Holding(ttl_seconds=5.0, now=0.0)
    holding.record(None, now=2.0)
    assert holding.certain(2.0)
    holding.record(True, now=3.0)
    holding.record(None, now=7.9)
    assert not holding.lost and holding.certain(7.9)
    holding.record(None, now=8.0)
    assert holding.lost


def test_certainty_ends_with_the_ttl_even_without_a_renewal_attempt() -> None:
    holding = Holding(ttl_seconds=5.0, now=0.0)
    assert holding.certain(4.99) and not holding.certain(5.0)
