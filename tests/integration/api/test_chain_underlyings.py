"""The live chain of each underlying, against a real simulated fleet (API, control worker,
stream worker, beat) of NIFTY, BANKNIFTY and SENSEX on one redis-server: event clients of
NIFTY and BANKNIFTY each hear only their own underlying's options and their own index's
level, on one subscription per watched underlying (none for SENSEX, which nobody watches;
both gone once the clients leave); an unknown underlying is 422 on the page and its
events; and in headless Chromium the page's selector switches to BANKNIFTY (its strikes,
a hundred apart, and a header naming it and NFO), then to SENSEX (BFO)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import redis
from playwright.sync_api import Page, sync_playwright

from tests.conftest import Fleet
from tests.integration.api.test_chain_page import CHROMIUM, CHROMIUM_ARGS
from tests.support.event_clients import running, until_heard
from tests.support.polling import wait_until
from tests.support.seed import near_money, seed_universe
from tests.support.timing import FAST_FLEET
from tests.support.underlyings import UNDERLYINGS
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(150)

IDLE = 1.0
WATCHED = ("NIFTY", "BANKNIFTY")  # SENSEX streams, but no event client watches it


@dataclass
class Market:
    url: str
    settings: Settings
    chosen: dict[str, list[Instrument]]


@pytest.fixture
def market(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> Iterator[Market]:
    settings = make_settings(
        feed="mock",
        underlyings=",".join(UNDERLYINGS),
        mock_tick_interval_seconds=0.3,
        chain_idle_seconds=IDLE,
        **FAST_FLEET,
    )
    options = seed_universe(settings, with_expired=False)
    chosen = {n: near_money(options, n, settings.underlying(n).spot) for n in UNDERLYINGS}
    url = fleet_factory(settings).everything(streams=len(UNDERLYINGS) + 1)
    with httpx.Client(base_url=url, timeout=30) as api:
        body = [{"instrument_token": o.instrument_token} for c in chosen.values() for o in c]
        assert api.post("/subscriptions", json=body).status_code == 200

        def priced() -> bool:
            for name, own in chosen.items():
                rows = api.get("/chain/data", params={"underlying": name}).json()["rows"]
                if sum(1 for r in rows for side in ("call", "put") if r[side]) != len(own):
                    return False
            return True

        wait_until(priced, 60, 0.3, "every chosen contract of each underlying in /chain/data")
    yield Market(url, settings, chosen)


@dataclass
class Heard:
    """What one event client heard in its ``ticks`` events."""

    tokens: set[int] = field(default_factory=set)
    index: list[dict[str, Any]] = field(default_factory=list)


async def _listen(url: str, name: str, heard: Heard) -> None:
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("GET", "/chain/events", params={"underlying": name.lower()}) as answer,
    ):
        assert answer.status_code == 200, name
        event = ""
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "ticks":
                data = orjson.loads(line.removeprefix("data: "))
                heard.tokens.update(option["token"] for option in data["options"])
                if data["underlying"] is not None:
                    heard.index.append(data["underlying"])


def _enough(market: Market, heard: dict[str, Heard]) -> bool:
    """Each client heard every option of its own underlying and its index three times (or
    something else: a token of another underlying ends the wait at once)."""
    for name, got in heard.items():
        own = {o.instrument_token for o in market.chosen[name]}
        if got.tokens - own:
            return True
        if got.tokens != own or len(got.index) < 3:
            return False
    return True


def test_each_event_client_hears_only_its_own_underlyings_options_and_index(
    market: Market,
) -> None:
    root = market.settings.channel_root
    options = {n: Channels.for_underlying(root, n).options for n in UNDERLYINGS}
    client = redis.Redis.from_url(market.settings.redis_url)

    def subscribers() -> dict[str, int]:
        counts = dict(client.pubsub_numsub(*options.values()))
        return {n: int(counts[c.encode()]) for n, c in options.items()}

    async def watch() -> tuple[dict[str, Heard], dict[str, int]]:
        heard = {name: Heard() for name in WATCHED}
        async with running(_listen(market.url, n, h) for n, h in heard.items()) as tasks:
            await until_heard(lambda: _enough(market, heard), tasks, 30, lambda: heard)
            async with httpx.AsyncClient(base_url=market.url, timeout=10) as other:
                for path in ("/chain", "/chain/events"):
                    refused = await other.get(path, params={"underlying": "GOLD"})
                    assert refused.status_code == 422, (path, refused.text)
                    assert "NIFTY, BANKNIFTY, SENSEX" in refused.text, refused.text
            return heard, subscribers()

    try:
        before = subscribers()
        heard, during = asyncio.run(watch())
        wait_until(lambda: set(subscribers().values()) == {0}, IDLE + 5, 0.1, "idle ones to go")
    finally:
        client.close()
    print(f"subscribers {before} before, {during} with a client of each of {WATCHED}")
    assert before == dict.fromkeys(UNDERLYINGS, 0)
    assert during == {"NIFTY": 1, "BANKNIFTY": 1, "SENSEX": 0}
    for name, got in heard.items():
        u = market.settings.underlying(name)
        assert got.tokens == {o.instrument_token for o in market.chosen[name]}, name
        assert {i["symbol"] for i in got.index} == {name}
        levels = [i["last"] for i in got.index]
        assert all(abs(level / u.spot - 1) < 0.05 for level in levels), (name, levels)
        print(f"{name}: {len(got.tokens)} options, index {min(levels):.2f}..{max(levels):.2f}")


def _strikes(page: Page) -> list[float]:
    return [
        float(s)
        for s in page.locator("#rows tr").evaluate_all("rs => rs.map(r => r.dataset.strike)")
    ]


def _priced(page: Page) -> int:
    texts = page.locator('[data-cell$="-last"]').all_inner_texts()
    return sum(1 for t in texts if t.replace(".", "").isdigit())


def _choose(page: Page, market: Market, name: str) -> dict[str, Any]:
    """Pick ``name`` in the selector; what the page shows once its rows are all priced."""
    page.select_option("#underlying", name)
    want = sorted({o.strike for o in market.chosen[name]})
    page.wait_for_function(
        "want => JSON.stringify([...document.querySelectorAll('#rows tr')]"
        ".map(r => Number(r.dataset.strike))) === JSON.stringify(want)",
        arg=want,
        timeout=15_000,
    )
    wait_until(lambda: _priced(page) == len(market.chosen[name]), 10, 0.2, f"{name}'s prices")
    page.wait_for_selector("#connection.ok", timeout=15_000)
    return {
        "strikes": _strikes(page),
        "name": page.inner_text("#name"),
        "exchange": page.inner_text("#exchange"),
        "spot": page.inner_text("#spot"),
        "title": page.title(),
        "address": page.url,
        "expiries": page.locator("#expiry option").all_inner_texts(),
    }


def test_the_pages_selector_switches_to_banknifty_and_to_sensex(market: Market) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 700})
            page.goto(f"{market.url}/chain")
            page.wait_for_selector("#connection.ok", timeout=15_000)
            listed = page.locator("#underlying option").all_inner_texts()
            first = {"name": page.inner_text("#name"), "strikes": _strikes(page)}
            shown = {name: _choose(page, market, name) for name in ("BANKNIFTY", "SENSEX")}
        finally:
            browser.close()
    print(f"listed {listed}; NIFTY first {first}; then {shown}")
    assert listed == ["NIFTY (NFO)", "BANKNIFTY (NFO)", "SENSEX (BFO)"]
    assert first == {"name": "NIFTY", "strikes": sorted({o.strike for o in market.chosen["NIFTY"]})}
    for name, exchange in (("BANKNIFTY", "NFO"), ("SENSEX", "BFO")):
        got, u = shown[name], market.settings.underlying(name)
        strikes = got["strikes"]
        assert strikes[1] - strikes[0] == u.strike_step == 100 and strikes[0] % 100 == 0, got
        assert (got["name"], got["exchange"]) == (name, exchange)
        assert got["spot"].split()[0] == name
        assert abs(float(got["spot"].split()[-1]) / u.spot - 1) < 0.05, got
        assert got["title"] == f"{name} chain — Simulated market — not real prices"
        assert got["address"].endswith(f"/chain?underlying={name}"), got
        own = sorted({o.expiry.isoformat() for o in market.chosen[name] if o.expiry})
        assert got["expiries"] == own, got  # its own expiries, not another underlying's
