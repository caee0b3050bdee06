"""The simulated index's start from Kite's last price, against the local Kite REST server."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from producers.kite_sim.local_rest import KiteRestServer
from tickfleet.accounts.access_tokens import Credentials, SessionStore
from tickfleet.instruments.universe import INDEX_TOKEN
from tickfleet.keyspace.keys import Keys
from tickfleet.stream.feeds.simulated.seed import kite_last_price

pytestmark = pytest.mark.timeout(30)

KEYS = Keys("test:")
INDEX = "NSE:NIFTY 50"


def seeded(redis_url: str, api_url: str, token: str | None) -> float | None:
    credentials = Credentials("key", SecretStr(token), "configuration") if token else None

    async def ask() -> float | None:
        async with aioredis.Redis.from_url(redis_url) as client:
            store = SessionStore(client, KEYS, "a")
            return await kite_last_price(store, lambda: credentials, api_url, INDEX)()

    return asyncio.run(ask())


def test_the_simulation_starts_at_kites_last_price(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with KiteRestServer({"key": "day-1"}) as kite:
        kite.set_price(INDEX, 23_456.7, instrument_token=INDEX_TOKEN)
        assert seeded(redis_url, kite.url, "day-1") == 23_456.7
        assert seeded(redis_url, kite.url, None) is None, "no session, no question"
        asked = len(kite.request_log())
        with caplog.at_level(logging.WARNING):
            assert seeded(redis_url, kite.url, "yesterday") is None
    assert asked == 1
    assert "no start price from Kite" in caplog.text and "yesterday" not in caplog.text
