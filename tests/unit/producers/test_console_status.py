"""``tickfleet status``'s summary of a health document, and how it reads in a terminal."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from producers.console.status import render, summarise

pytestmark = pytest.mark.timeout(10)
NOW = 1_781_000_000.0


def _stream(problem: str | None = None, holder: str | None = "stream@host:1:ab") -> dict[str, Any]:
    return {
        "lease_holder": holder,
        "mode": "mock",
        "tokens": 3,
        "ticks": 40,
        "last_tick_at": NOW - 2.5,
        "expected": True,
        "problem": problem,
    }


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "status": "ok",
        "redis": {"ok": True, "latency_ms": 0.2},
        "database": {"ok": True, "writable": True},
        "streams": {"underlying": _stream(), "account:sim-1": _stream()},
        "subscriptions": {"active": 3, "streaming": 3, "not_streaming": 0, "by_reason": {}},
        "breaker": {"state": "closed"},
        "stream_workers": {"free_slots": 1, "workers": [{"name": "stream"}]},
        "problems": [],
        "warnings": [],
    }
    return {**doc, **changes}


def _text(doc: dict[str, Any]) -> str:
    out = Console(width=160, record=True, color_system=None)
    out.print(render(summarise(doc, NOW)))
    return out.export_text()


def test_a_healthy_fleet_reads_healthy_with_its_streams() -> None:
    summary = summarise(_doc(), NOW)
    assert summary.healthy
    assert [s.name for s in summary.streams] == ["account:sim-1", "underlying"]
    assert summary.streams[0].last_tick_age == 2.5
    text = _text(_doc())
    assert text.startswith("fleet healthy  subscriptions: 3 active, 3 streaming, 0 not")
    assert "breaker: closed" in text and "stream workers: 1" in text
    assert "2.5s ago" in text
    assert "problem" not in text


def test_a_stopped_stream_is_a_problem_and_not_healthy() -> None:
    lost = "no stream holds the lease"
    doc = _doc(
        status="degraded",
        streams={"account:sim-1": _stream(lost, holder=None)},
        subscriptions={
            "active": 3,
            "streaming": 0,
            "not_streaming": 3,
            "by_reason": {"no_stream": 3},
        },
        problems=[f"stream account:sim-1: {lost}"],
    )
    summary = summarise(doc, NOW + 60)
    assert not summary.healthy
    assert summary.streams[0].last_tick_age == 62.5  # ages by the clock, not the last report
    text = _text(doc)
    assert text.startswith("fleet degraded")
    assert "3 not (no_stream 3)" in text
    assert f"problem: stream account:sim-1: {lost}" in text


def test_an_unreachable_redis_is_named() -> None:
    doc = {
        "status": "down",
        "redis": {"ok": False, "error": "ConnectionError: refused"},
        "database": {"ok": True},
    }
    summary = summarise(doc, NOW)
    assert not summary.healthy
    assert summary.problems == ["redis unreachable: ConnectionError: refused"]
    assert "fleet down" in _text(doc)


def test_the_public_summary_says_the_key_is_missing() -> None:
    public = {"status": "degraded", "problems": ["publish breaker publish is open"], "warnings": []}
    summary = summarise(public, NOW)
    assert not summary.full
    assert summary.streams == []
    text = _text(public)
    assert "problem: publish breaker publish is open" in text
    assert "set TICKFLEET_API_KEY" in text


def test_an_open_breaker_is_shown_beside_the_verdict() -> None:
    assert summarise(_doc(breaker={"state": "open"}), NOW).breaker == "open"
    assert "breaker: open" in _text(_doc(breaker={"state": "open"}))
