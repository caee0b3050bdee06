"""``tickfleet chain``: one expiry's strikes from the latest ticks, calls left, puts right."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from producers.console.chain import chain_table
from tickfleet.chain.option_chain import build_chain

pytestmark = pytest.mark.timeout(10)
SPOT = {"symbol": "NIFTY", "last_price": 24012.5, "change": 12.5, "timestamp": "2026-06-10T11:00"}


def _tick(strike: float, side: str, price: float, expiry: str = "2026-06-16") -> dict[str, Any]:
    return {
        "instrument_type": side,
        "strike": strike,
        "expiry": expiry,
        "last_price": price,
        "prev_close": None,
        "oi": 131755,
        "iv": 0.131,
        "delta": 0.53 if side == "CE" else -0.47,
    }


def _text(table: object) -> str:
    out = Console(width=160, record=True, color_system=None)
    out.print(table)
    return out.export_text()


def test_the_nearest_expiry_by_strike_with_both_sides() -> None:
    ticks = [
        _tick(24050, "CE", 150.0),
        _tick(24000, "PE", 160.25),
        _tick(24000, "CE", 176.1),
        _tick(24000, "CE", 99.0, expiry="2026-06-23"),
    ]
    chain = build_chain(ticks, SPOT, None)
    assert chain.expiry == "2026-06-16"
    assert chain.expiries == ["2026-06-16", "2026-06-23"]
    assert [r.strike for r in chain.rows] == [24000, 24050]
    assert chain.rows[0].call is not None and chain.rows[0].call["last_price"] == 176.1
    assert chain.rows[1].put is None
    text = _text(chain_table(chain))
    assert "NIFTY 24012.50 (+12.50)   expiry 2026-06-16" in text
    row = next(line for line in text.splitlines() if " 24000 " in line)
    call, put = row.split(" 24000 ")
    assert "176.10" in call and "131,755" in call and "13.1" in call and "+0.53" in call
    assert "160.25" in put and "-0.47" in put
    assert "other expiries streamed: 2026-06-23" in text


def test_change_is_shown_only_against_a_known_previous_close() -> None:
    tick = {**_tick(24000, "CE", 180.0), "prev_close": 170.0}
    text = _text(chain_table(build_chain([tick], SPOT, "2026-06-16")))
    assert "+10.00" in text


def test_an_empty_chain_says_so() -> None:
    chain = build_chain([], None, None)
    assert chain.rows == [] and chain.expiry is None
    text = _text(chain_table(chain))
    assert "no underlying tick" in text and "no streamed strikes" in text
