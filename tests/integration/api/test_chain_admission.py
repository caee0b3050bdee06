"""``/chain/events`` admission against a real API process (uvicorn) and redis-server: a
burst of 70 pages opening the stream at one instant with ``TICKFLEET_CHAIN_MAX_WATCHERS``
at 50 admits exactly 50 (200 and an event stream) and refuses exactly 20 (503 with
``Retry-After``); once the 50 leave, their places are free again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from producers.api.routes.chain import RETRY_AFTER_SECONDS
from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.seed import init_database
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(90)

CAP = 50
BURST = 70


async def _open(
    client: httpx.AsyncClient, start: asyncio.Event, release: asyncio.Event
) -> tuple[int, str | None]:
    """One page: waits for the burst's start, opens the stream; an admitted one reads its
    first event, then holds the stream open until ``release``. Returns the status and the
    ``Retry-After`` header (admitted: the first event line)."""
    await start.wait()
    async with client.stream("GET", "/chain/events") as answer:
        if answer.status_code != 200:
            await answer.aread()
            return answer.status_code, answer.headers.get("retry-after")
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = answer.aiter_lines()
        first = await anext(line async for line in lines if line.startswith("event:"))
        await release.wait()
        return 200, first


async def _burst(url: str, size: int) -> list[tuple[int, str | None]]:
    """``size`` pages opening at once on as many connections; all close at the end."""
    start, release = asyncio.Event(), asyncio.Event()
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        tasks = [asyncio.create_task(_open(client, start, release)) for _ in range(size)]
        try:
            await asyncio.sleep(0.2)  # every task is waiting on ``start``
            start.set()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while sum(t.done() for t in tasks) < size - CAP and loop.time() < deadline:
                await asyncio.sleep(0.05)  # the refused answer at once; the admitted wait
            await asyncio.sleep(0.5)  # a late refusal, if any, would show by now
            release.set()
            return await asyncio.gather(*tasks)
        finally:
            release.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _tally(answers: list[tuple[int, str | None]]) -> tuple[int, int, set[str | None]]:
    admitted = sum(1 for code, _ in answers if code == 200)
    refused = [after for code, after in answers if code == 503]
    return admitted, len(refused), set(refused)


def test_a_burst_of_seventy_pages_admits_exactly_fifty_and_refuses_twenty_with_retry_after(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(feed="mock", chain_max_watchers=CAP, chain_idle_seconds=1.0)
    init_database(settings)
    _, url = fleet_factory(settings).api()

    answers = asyncio.run(_burst(url, BURST))
    admitted, refused, retry_after = _tally(answers)
    firsts = {first for code, first in answers if code == 200}
    print(f"burst of {BURST} with a cap of {CAP}: {admitted} admitted, {refused} refused")
    assert (admitted, refused) == (CAP, BURST - CAP), answers
    assert retry_after == {str(RETRY_AFTER_SECONDS)}, retry_after
    assert firsts and all(f and f.startswith("event: ") for f in firsts), firsts

    def freed() -> bool:  # the 50 left: their places are free for another burst
        again = _tally(asyncio.run(_burst(url, BURST)))
        return again[:2] == (CAP, BURST - CAP)

    wait_until(freed, 20, 0.5, "fifty places free again after the first fifty left")
