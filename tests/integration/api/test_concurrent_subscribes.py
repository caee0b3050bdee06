"""Concurrent POSTs share write batches, and each is still admitted or refused on its own.

The API writes the POSTs that arrive together in one transaction (``Desk.subscribe_each``):
a request must see the ones before it as written, so a token posted many times at once is
created once, and free room is handed out exactly, never twice.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.seed import seed_universe
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(60)

ROOM = 5


async def _post_all(base: str, tokens: list[int]) -> list[int]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        answers = await asyncio.gather(
            *(client.post("/subscriptions", json={"instrument_token": t}) for t in tokens)
        )
    return [a.status_code for a in answers]


def _active(base: str) -> set[int]:
    rows = httpx.get(f"{base}/subscriptions", params={"status": "active"}, timeout=10).json()
    return {r["instrument_token"] for r in rows}


def test_concurrent_posts_are_admitted_one_by_one_within_the_room(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(max_tokens_per_connection=ROOM, connections_per_account=1)
    tokens = [o.instrument_token for o in seed_universe(settings)]
    _, base = fleet_factory(settings).api()

    same = asyncio.run(_post_all(base, [tokens[0]] * 8))
    assert Counter(same) == {201: 1, 200: 7}, "one token posted at once is created once"

    others = tokens[1:13]
    codes = asyncio.run(_post_all(base, others))
    assert Counter(codes) == {201: ROOM - 1, 409: len(others) - (ROOM - 1)}
    admitted = {t for t, code in zip(others, codes, strict=True) if code == 201}
    assert _active(base) == {tokens[0], *admitted}
