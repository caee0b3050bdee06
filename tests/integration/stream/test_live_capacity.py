"""Two Kite accounts, 4,500 live tokens: at most 3000 per connection, every token heard."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import httpx
import orjson
import pytest
import redis

from producers.kite_sim.local_server import KiteServer
from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.seed import seed_universe
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.instruments.universe import INDEX_TOKEN
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(240)

TOKENS = 4_500
CREDENTIALS = {"key-a": "token-a", "key-b": "token-b"}
ACCOUNTS = [
    {"account_id": "kite-a", "api_key": "key-a", "access_token": "token-a"},
    {"account_id": "kite-b", "api_key": "key-b", "access_token": "token-b"},
]


def test_two_accounts_stream_4500_tokens_within_kites_connection_limits(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_client: redis.Redis,
) -> None:
    with KiteServer(CREDENTIALS, interval=0.5, heartbeat_interval=0.5) as kite:
        settings = make_settings(
            feed="live",
            accounts=orjson.dumps(ACCOUNTS).decode(),
            kite_ticker_url=kite.url,
            kite_api_url="http://127.0.0.1:9",
            kite_stale_seconds=3.0,
            mock_strikes_each_side=190,
            **FAST_FLEET,
        )
        options = seed_universe(settings, with_expired=False)
        assert len(options) >= TOKENS
        tokens = sorted(o.instrument_token for o in options)[:TOKENS]
        kite.set_price(INDEX_TOKEN, 24_000.0)
        fleet = fleet_factory(settings)
        url = fleet.everything()
        with httpx.Client(base_url=url, timeout=60) as api:
            body = [{"instrument_token": t} for t in tokens]
            assert api.post("/subscriptions", json=body).status_code == 200
        subscribed = time.time()
        latest = Channels.for_underlying(settings.channel_root, "NIFTY").latest_options

        def heard() -> set[int]:
            ticks = (orjson.loads(v) for v in redis_client.hvals(latest))
            return {t["instrument_token"] for t in ticks if t["is_mock"] is False}

        wait_until(lambda: len(heard()) == TOKENS, 90, 0.5, "every token live")
        print(f"{TOKENS} tokens live on two accounts after {time.time() - subscribed:.1f}s")
        clients = [c for c in kite.clients() if c.open and INDEX_TOKEN not in c.subscribed]

    assert heard() == set(tokens)
    per_connection = [len(c.subscribed) for c in clients]
    assert max(per_connection) <= 3000 and sum(per_connection) == TOKENS
    by_account = Counter(c.api_key for c in clients)
    assert set(by_account) == set(CREDENTIALS), "both accounts stream"
    assert by_account["key-a"] <= 2 and by_account["key-b"] <= 3  # + the index's on key-a
