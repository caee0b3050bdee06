"""Where a chain's prices come from, from what the streams report (``/health``'s streams)."""

from __future__ import annotations

from typing import Any

from tickfleet.chain.price_source import price_source


def _streams(**modes: str | None) -> dict[str, dict[str, Any]]:
    """Stream statuses by name (``account_a`` → ``account:a``), each with its mode."""
    return {n.replace("account_", "account:"): {"mode": m} for n, m in modes.items()}


def test_simulated_streams_say_simulated_market_not_real_prices() -> None:
    source = price_source(_streams(account_primary="mock", underlying="mock"))
    assert source.document() == {
        "kind": "simulated",
        "label": "Simulated market — not real prices",
        "accounts": [],
        "replay": None,
    }


def test_live_streams_name_kite_and_their_accounts() -> None:
    one = price_source(_streams(account_primary="live", underlying="live"))
    assert (one.kind, one.label, one.accounts) == (
        "live",
        "Live — Kite (account primary)",
        ("primary",),
    )
    two = price_source(_streams(account_b="live", account_a="live", underlying="live"))
    assert two.label == "Live — Kite (accounts a, b)"


def test_a_replay_names_its_day_and_speed_and_says_not_live() -> None:
    replaying = {"mode": "replay", "replay_date": "2026-06-05", "replay_speed": "10"}
    source = price_source({"account:primary": replaying, "underlying": replaying})
    assert source.kind == "replay"
    assert (
        source.label
        == "Replay of 2026-06-05 at 10\N{MULTIPLICATION SIGN} — recorded prices, not live"
    )
    assert source.document()["replay"] == {"date": "2026-06-05", "speed": 10.0}
    unsaid = price_source(_streams(account_primary="replay"))
    assert unsaid.label == "Replay of a recorded day — recorded prices, not live"


def test_live_and_simulated_accounts_together_say_mixed() -> None:
    source = price_source(_streams(account_a="live", account_b="mock", underlying="live"))
    assert source.kind == "mixed" and source.accounts == ("a",)
    assert source.label == (
        "Mixed — live Kite (a, index); simulated market (b): not all prices are live market prices"
    )


def test_streams_that_stream_nothing_say_no_feed() -> None:
    for streams in ({}, _streams(account_a="idle", underlying="starting"), _streams(a=None)):
        source = price_source(streams)
        assert source.kind == "none", streams
        assert "No feed running" in source.label and "live" not in source.label.lower()
    partly = price_source(_streams(account_a="stopped", underlying="mock"))
    assert partly.kind == "simulated"
