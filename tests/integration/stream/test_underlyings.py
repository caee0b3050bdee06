"""Several underlyings at once, heard from a real fleet (API, control worker, stream
worker, beat) through real Redis: every subscribed option of NIFTY, BANKNIFTY and SENSEX
ticks on its own underlying's channel, priced against its own index (put-call parity
gives back that index's level, not another's), and SENSEX's options are BFO contracts."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.seed import near_money, seed_universe
from tests.support.ticks import TickCollector, collecting
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument
from tickfleet.market.expiry import years_to_expiry

pytestmark = pytest.mark.timeout(120)

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


def _enough(collectors: dict[str, TickCollector]) -> bool:
    for collector in collectors.values():
        versions = defaultdict(set)
        for t in collector.options():
            versions[t["version"]].add(t["instrument_token"])
        if sum(1 for heard in versions.values() if len(heard) == 4) < PAIRS:
            return False
        if not collector.underlying():
            return False
    return True


def test_each_underlyings_options_tick_on_its_channels_priced_on_its_own_index(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(
        feed="mock", underlyings=",".join(UNDERLYINGS), mock_tick_interval_seconds=0.3, **FAST_FLEET
    )
    options = seed_universe(settings, with_expired=False)
    chosen = {n: near_money(options, n, settings.underlying(n).spot) for n in UNDERLYINGS}
    url = fleet_factory(settings).everything(streams=len(UNDERLYINGS) + 1)
    with collecting(settings, UNDERLYINGS) as collectors:
        with httpx.Client(base_url=url, timeout=30) as api:
            body = [{"instrument_token": o.instrument_token} for c in chosen.values() for o in c]
            assert api.post("/subscriptions", json=body).status_code == 200
            next(iter(collectors.values())).wait_for(
                lambda _: _enough(collectors), 60, f"{PAIRS} whole chain ticks of each underlying"
            )
            _chain_pages(api, chosen)
            _counted_by_name(api, chosen)
        heard = {name: c.options() for name, c in collectors.items()}
        index = {name: c.underlying() for name, c in collectors.items()}
    for name in UNDERLYINGS:
        _check_underlying(settings, name, chosen[name], heard[name], index[name])


def _chain_pages(api: httpx.Client, chosen: dict[str, list[Instrument]]) -> None:
    """``/chain/data?underlying=`` serves each underlying's own strikes; another name is 422."""
    for name, options in chosen.items():
        reply = api.get("/chain/data", params={"underlying": name.lower()})
        assert reply.status_code == 200, reply.text
        strikes = {row["strike"] for row in reply.json()["rows"]}
        assert strikes == {o.strike for o in options}, name
    refused = api.get("/chain/data", params={"underlying": "GOLD"})
    assert refused.status_code == 422 and "NIFTY, BANKNIFTY, SENSEX" in refused.text


def _counted_by_name(api: httpx.Client, chosen: dict[str, list[Instrument]]) -> None:
    """``/health`` and ``/metrics`` count each underlying's subscriptions by its name."""
    expected = {name: {"active": len(o), "streaming": len(o)} for name, o in chosen.items()}
    deadline = time.monotonic() + 20
    while True:  # /health's streaming verdict follows the streams' status, a second apart
        counted = api.get("/health").json()["subscriptions"]["by_underlying"]
        if counted == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert counted == expected
    metrics = api.get("/metrics").text
    for name, options in chosen.items():
        line = f'underlying_subscriptions_streaming{{underlying="{name}"}} {float(len(options))}'
        assert line in metrics, line


def _check_underlying(
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
