"""Simulated ticks carry a book as their mode says, heard from a real fleet (API, control
worker, stream worker, beat) through real Redis: a FULL subscription's ticks a coherent
five-level book in Kite's shape with its totals (also in the latest-tick hash), a QUOTE
one's the totals only, an LTP one's neither; and so again once FULL and LTP swap."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.conftest import Fleet
from tests.support.depth import check_depth
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(120)

TICKS = 6  # chain ticks heard of each token: past a refresh of the books' shapes
SWAPPED = {"FULL": "LTP", "QUOTE": "QUOTE", "LTP": "FULL"}


def _heard(ticks: TickCollector, tokens: dict[int, str], since: float) -> bool:
    counts = dict.fromkeys(tokens, 0)
    for tick in ticks.options(since):
        if tick["instrument_token"] in counts:
            counts[tick["instrument_token"]] += 1
    return min(counts.values()) >= TICKS


def _swapped(ticks: TickCollector, tokens: dict[int, str], since: float) -> bool:
    """A tick of each swapped token since ``since`` already in its new mode."""
    books = {t["instrument_token"]: t["depth"] is not None for t in ticks.options(since)}
    return all(books.get(t) == (m == "FULL") for t, m in tokens.items() if m != "QUOTE")


def _subscribe(url: str, tokens: dict[int, str]) -> None:
    with httpx.Client(base_url=url, timeout=30) as api:
        body = [{"instrument_token": t, "mode": m} for t, m in tokens.items()]
        assert api.post("/subscriptions", json=body).status_code == 200


def test_full_quote_and_ltp_subscriptions_carry_a_book_as_kite_would(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(feed="mock", mock_tick_interval_seconds=0.3, **FAST_FLEET)
    options = seed_universe(settings, with_expired=False)
    nearest = min(o.expiry for o in options if o.expiry is not None)
    money = sorted((o for o in options if o.expiry == nearest), key=lambda o: abs(o.strike - 24000))
    tokens = dict(
        zip((o.instrument_token for o in money[:3]), ("FULL", "QUOTE", "LTP"), strict=True)
    )
    swapped = {t: SWAPPED[m] for t, m in tokens.items()}
    url = fleet_factory(settings).everything()
    ticks = TickCollector(settings.redis_url, "NIFTY", settings.channel_root).start()
    try:
        _subscribe(url, tokens)
        ticks.wait_for(lambda c: _heard(c, tokens, 0), 30, f"{TICKS} ticks of each token")
        heard = [t for t in ticks.options() if t["instrument_token"] in tokens]
        changed = time.time()
        _subscribe(url, swapped)  # the stream follows a mode change without restarting
        took = ticks.wait_for(lambda c: _swapped(c, swapped, changed), 20, "the new modes")
        since = time.time()
        ticks.wait_for(lambda c: _heard(c, swapped, since), 30, f"{TICKS} ticks in new modes")
        after = [t for t in ticks.options(since) if t["instrument_token"] in tokens]
    finally:
        ticks.stop()
    spreads = _check(heard, tokens) + _check(after, swapped)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        full = next(t for t, m in swapped.items() if m == "FULL")
        latest = client.hget(
            Channels.for_underlying(settings.channel_root, "NIFTY").latest_options, str(full)
        )
    finally:
        client.close()
    assert latest is not None
    check_depth(orjson.loads(latest))
    print(
        f"{len(heard) + len(after)} ticks checked; modes swapped in {took:.1f}s; "
        f"FULL spreads {sorted(set(spreads))}"
    )


def _check(heard: list[dict[str, Any]], tokens: dict[int, str]) -> list[float]:
    """Every tick as its mode says; the FULL ones' spreads (all have bids near the money)."""
    spreads = []
    for tick in heard:
        mode = tokens[tick["instrument_token"]]
        assert tick["is_mock"] is True
        if mode == "FULL":
            spread = check_depth(tick)
            assert spread is not None, tick
            spreads.append(spread)
            continue
        assert tick["depth"] is None, tick
        totals = (tick["total_buy_quantity"], tick["total_sell_quantity"])
        if mode == "QUOTE":
            assert all(type(q) is int and q > 0 and q % tick["lot_size"] == 0 for q in totals)
        else:
            assert totals == (None, None), tick
    return spreads
