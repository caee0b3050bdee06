"""What a fleet of several underlyings must show, checked alike on one Redis and on a
Redis Cluster: whole chain ticks heard, each chain page's strikes, and each underlying's
options on its own exchange priced on its own index (put-call parity)."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime
from typing import Any

import httpx

from tests.support.ticks import TickCollector
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument
from tickfleet.market.expiry import years_to_expiry

UNDERLYINGS = ("NIFTY", "BANKNIFTY", "SENSEX")
PAIRS = 4  # chain ticks in which every subscribed strike's call and put are both heard


def implied_spots(ticks: list[dict[str, Any]], rate: float, tz: str) -> list[float]:
    """S = C - P + K e^(-rT) for each chain tick (one version) where both legs were heard."""
    legs: dict[tuple[float, str, int], dict[str, float]] = defaultdict(dict)
    stamps: dict[tuple[float, str, int], str] = {}
    for t in ticks:
        key = (t["strike"], t["expiry"], t["version"])
        legs[key][t["instrument_type"]] = t["last_price"]
        stamps[key] = t["timestamp"]
    spots = []
    for (strike, expiry, _), prices in legs.items():
        if len(prices) == 2:
            now = datetime.fromisoformat(stamps[(strike, expiry, _)])
            years = years_to_expiry(now, date.fromisoformat(expiry), tz)
            spots.append(prices["CE"] - prices["PE"] + strike * math.exp(-rate * years))
    return spots


def enough_chains(collectors: dict[str, TickCollector]) -> bool:
    for collector in collectors.values():
        versions = defaultdict(set)
        for t in collector.options():
            versions[t["version"]].add(t["instrument_token"])
        if sum(1 for heard in versions.values() if len(heard) == 4) < PAIRS:
            return False
        if not collector.underlying():
            return False
    return True


def check_chain_pages(api: httpx.Client, chosen: dict[str, list[Instrument]]) -> None:
    """``/chain/data?underlying=`` serves each underlying's own strikes; another name is 422."""
    for name, options in chosen.items():
        reply = api.get("/chain/data", params={"underlying": name.lower()})
        assert reply.status_code == 200, reply.text
        strikes = {row["strike"] for row in reply.json()["rows"]}
        assert strikes == {o.strike for o in options}, name
    refused = api.get("/chain/data", params={"underlying": "GOLD"})
    assert refused.status_code == 422 and "NIFTY, BANKNIFTY, SENSEX" in refused.text


def check_underlying(
    settings: Settings,
    name: str,
    chosen: list[Instrument],
    heard: list[dict[str, Any]],
    index: list[dict[str, Any]],
) -> None:
    u = settings.underlying(name)
    assert {t["instrument_token"] for t in heard} == {o.instrument_token for o in chosen}, name
    assert {t["symbol"] for t in heard} == {name}
    assert {(t["exchange"], t["segment"]) for t in heard} == {(u.exchange, f"{u.exchange}-OPT")}
    assert {t["lot_size"] for t in heard} == {u.lot_size}
    assert {(t["symbol"], t["instrument_token"]) for t in index} == {(name, u.index_token)}
    levels = [t["last_price"] for t in index]
    low, high = min(levels), max(levels)
    assert abs(low / u.spot - 1) < 0.05, f"{name}'s index starts near its own level"
    spots = implied_spots(heard, settings.mock_risk_free_rate, settings.market_timezone)
    assert len(spots) >= 2 * PAIRS
    for spot in spots:  # within the index's heard range, give or take its drift per tick
        assert low * 0.9995 <= spot <= high * 1.0005, (name, spot, low, high)
    print(f"{name}: {len(heard)} option ticks, index {low:.2f}..{high:.2f}, parity {spots[:3]}")
