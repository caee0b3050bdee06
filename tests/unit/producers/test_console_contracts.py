"""Contracts named on the command line: tokens, or an underlying, expiry and strikes."""

from __future__ import annotations

from datetime import date

import pytest

from producers.console.contracts import Selection, SelectionError, parse_targets, tokens_of

pytestmark = pytest.mark.timeout(10)


def test_integers_are_tokens() -> None:
    assert parse_targets(["256265", "12073986"]) == [256265, 12073986]


def test_a_selection_with_a_range_and_a_side() -> None:
    chosen = parse_targets(["nifty", "2026-06-11", "24000-24500", "ce"])
    assert chosen == Selection("NIFTY", date(2026, 6, 11), 24000.0, 24500.0, "CE")
    assert isinstance(chosen, Selection)
    assert chosen.filters() == {
        "underlying": "NIFTY",
        "expiry": "2026-06-11",
        "strike_min": 24000.0,
        "strike_max": 24500.0,
        "instrument_type": "CE",
        "limit": 10000,
    }


def test_one_strike_both_sides() -> None:
    assert parse_targets(["NIFTY", "2026-06-11", "24000"]) == Selection(
        "NIFTY", date(2026, 6, 11), 24000.0, 24000.0, None
    )


@pytest.mark.parametrize(
    ("words", "says"),
    [
        (["NIFTY", "2026-06-11"], "name tokens"),
        (["NIFTY", "11-06-2026", "24000"], "YYYY-MM-DD"),
        (["NIFTY", "2026-06-11", "24000-abc"], "LOW-HIGH"),
        (["NIFTY", "2026-06-11", "24500-24000"], "backwards"),
        (["NIFTY", "2026-06-11", "24000", "FUT"], "CE or PE"),
        ([], "name tokens"),
    ],
)
def test_what_is_wrong_is_said(words: list[str], says: str) -> None:
    with pytest.raises(SelectionError, match=says):
        parse_targets(words)


def test_tokens_come_in_chain_order() -> None:
    listed = [
        {"instrument_token": 3, "strike": 24050.0, "instrument_type": "CE"},
        {"instrument_token": 2, "strike": 24000.0, "instrument_type": "PE"},
        {"instrument_token": 1, "strike": 24000.0, "instrument_type": "CE"},
    ]
    assert tokens_of(listed) == [1, 2, 3]
