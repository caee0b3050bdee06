"""``/chain`` against a real fleet in simulated mode (API, control worker, stream worker,
beat): the page in headless Chromium (Debian's, installed by ``make browser``, driven by
Playwright) shows prices that change, says they come from the simulated market (not
live), with the connection, the fleet's and the breaker's status; fifty
server-sent-event clients cost Redis one subscription, which goes once they leave, and a
fifty-first is refused."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Page, sync_playwright

from tests.conftest import Fleet
from tests.support.event_clients import running, until_heard
from tests.support.polling import wait_until
from tests.support.seed import seed_universe
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(150)

CHROMIUM = os.environ.get("TICKFLEET_CHROMIUM", "/usr/bin/chromium")
# The flags a headless Chromium needs here: as root, no GPU, and no calls home (this
# machine's network is closed; background connections would be refused many at a time).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IDLE = 1.0


@dataclass
class Market:
    url: str
    expiry: str
    chosen: list[Instrument]
    settings: Settings


@pytest.fixture
def market(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> Iterator[Market]:
    settings = make_settings(
        feed="mock",
        mock_tick_interval_seconds=0.3,
        chain_idle_seconds=IDLE,
        **FAST_FLEET,
        chain_max_watchers=50,
    )
    options = seed_universe(settings, with_expired=False)
    url = fleet_factory(settings).everything()
    nearest = min(o.expiry for o in options if o.expiry is not None)
    strikes = sorted(
        {o.strike for o in options if o.expiry == nearest}, key=lambda k: abs(k - 24000)
    )
    chosen = [o for o in options if o.expiry == nearest and o.strike in strikes[:3]]
    body = [{"instrument_token": o.instrument_token} for o in chosen]
    with httpx.Client(base_url=url, timeout=30) as api:
        assert api.post("/subscriptions", json=body).status_code == 200

        def priced() -> bool:
            rows = api.get("/chain/data").json()["rows"]
            return sum(1 for r in rows for side in ("call", "put") if r[side]) == len(chosen)

        wait_until(priced, 30, 0.2, "every chosen contract in /chain/data")
    yield Market(url, nearest.isoformat(), chosen, settings)


def _prices(page: Page) -> list[str]:
    return page.locator('[data-cell$="-last"]').all_inner_texts()


def test_the_chain_page_shows_changing_simulated_prices_as_such_and_the_fleets_status(
    market: Market, tmp_path: Path
) -> None:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make browser` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 700})
            page.goto(f"{market.url}/chain")
            page.wait_for_selector("#connection.ok", timeout=15_000)  # the event stream is open
            first = _prices(page)
            assert len(first) == 2 * 3 and all(p.replace(".", "").isdigit() for p in first), first
            assert page.locator("#expiry").input_value() == market.expiry
            wait_until(lambda: _prices(page) != first, 10, 0.2, "a price to change")
            changed = sum(a != b for a, b in zip(first, _prices(page), strict=True))
            page.wait_for_function("document.querySelector('#status').textContent === 'ok'")
            names = ("source", "status", "breaker", "connection", "spot")
            header = {k: page.inner_text(f"#{k}") for k in names}
            title = page.title()
            shot = tmp_path / "chain.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    print(f"{changed} of 6 prices changed; header {header}; screenshot {shot}")
    assert header["source"] == "Simulated market — not real prices"
    assert title == "NIFTY chain — Simulated market — not real prices"
    assert header["breaker"] == "closed" and header["connection"] == "connected"
    assert not any("live" in words.lower() for words in header.values()), header
    assert header["spot"].startswith("NIFTY") and float(header["spot"].split()[-1]) > 20_000
    assert shot.stat().st_size > 10_000


async def _watch(url: str, expiry: str, heard: list[int]) -> None:
    """One SSE client: counts ``ticks`` events until cancelled."""
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("GET", "/chain/events", params={"expiry": expiry}) as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        async for line in answer.aiter_lines():
            if line == "event: ticks":
                heard.append(1)


def test_fifty_event_clients_cost_redis_one_subscription_per_api_process(
    market: Market,
) -> None:
    channels = Channels.for_underlying(market.settings.channel_root, "NIFTY")
    client = redis.Redis.from_url(market.settings.redis_url)

    def subscribers() -> int:
        return int(dict(client.pubsub_numsub(channels.options))[channels.options.encode()])

    async def fifty() -> tuple[int, list[int]]:
        heard: list[list[int]] = [[] for _ in range(50)]

        def counts() -> list[int]:
            return [len(h) for h in heard]

        async with running(_watch(market.url, market.expiry, h) for h in heard) as tasks:
            await until_heard(lambda: min(counts()) >= 3, tasks, 20, counts)
            async with httpx.AsyncClient(base_url=market.url, timeout=10) as extra:
                refused = await extra.get("/chain/events", params={"expiry": market.expiry})
                assert refused.status_code == 503, refused.text  # the 51st of at most 50
                bad = await extra.get("/chain/events", params={"expiry": "someday"})
                assert bad.status_code == 422, bad.text
            return subscribers(), counts()

    try:
        before = subscribers()
        during, heard = asyncio.run(fifty())
        wait_until(lambda: subscribers() == before, IDLE + 5, 0.1, "the idle subscription to go")
        names = [c["name"] for c in client.client_list()]
    finally:
        client.close()
    print(f"subscribers on {channels.options}: {before} before, {during} with 50 clients")
    assert before == 0 and during == 1
    assert min(heard) >= 3
    assert "api/chain" not in names
