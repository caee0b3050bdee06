"""Two underlyings across two accounts, live, against the local Kite server, publishing on
one Redis and on a local Redis Cluster (sharded channels): NIFTY's options stream on one
account's connections and BANKNIFTY's on the other's, each on its
own underlying's channels with Kite's exact prices and an IV solved against its own index
(15 % both: priced off the other index, the IV would be far off or unsolvable), and each
index streams on its own channel, through a connection of its own account's api key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from producers.kite_sim.local_server import KiteServer
from tests.conftest import Fleet
from tests.support.fair import fair_prices
from tests.support.seed import near_money, seed_universe
from tests.support.ticks import collecting
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.config.underlyings import KNOWN
from tickfleet.instruments import Instrument

pytestmark = pytest.mark.timeout(180)

VOL = 0.15
SPOTS = {"NIFTY": 24_000.0, "BANKNIFTY": 57_000.0}
ACCOUNTS = {"NIFTY": ("a", "key_a", "token_a"), "BANKNIFTY": ("b", "key_b", "token_b")}


@pytest.mark.parametrize("publish", ["one Redis", "cluster"])
def test_two_underlyings_on_two_accounts_stream_live_each_on_its_own_index(
    publish: str,
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    request: pytest.FixtureRequest,
) -> None:
    cluster = publish == "cluster"
    publishing = (
        {"publish_redis_url": request.getfixturevalue("redis_cluster").url} if cluster else {}
    )
    credentials = {key: token for _, key, token in ACCOUNTS.values()}
    with KiteServer(credentials, interval=0.1, heartbeat_interval=0.5) as kite:
        accounts = [
            {"account_id": a, "api_key": key, "access_token": token}
            for a, key, token in ACCOUNTS.values()
        ]
        settings = make_settings(
            feed="live",
            underlyings="NIFTY,BANKNIFTY",
            accounts=orjson.dumps(accounts).decode(),
            kite_ticker_url=kite.url,
            kite_stale_seconds=1.5,
            kite_reconnect_base_seconds=0.1,
            kite_session_check_seconds=0.5,
            **publishing,
            **FAST_FLEET,
        )
        options = seed_universe(settings, with_expired=False)
        chains = {name: near_money(options, name, spot) for name, spot in SPOTS.items()}
        prices = fair_prices([o for c in chains.values() for o in c], settings, SPOTS, VOL)
        for name, spot in SPOTS.items():
            kite.set_price(KNOWN[name].index_token, spot)
        for token, value in prices.items():
            kite.set_price(token, value)
        url = fleet_factory(settings).everything(streams=4)
        with collecting(settings, SPOTS) as collectors:
            channel = "ticker:{{{}}}:options" if cluster else "ticker:{}:options"
            heard_on = {c.channels.options for c in collectors.values()}
            assert heard_on == {channel.format(n.lower()) for n in SPOTS}
            with httpx.Client(base_url=url, timeout=30) as api:
                for name, chain in chains.items():
                    for o in chain:
                        body = {
                            "instrument_token": o.instrument_token,
                            "account_id": ACCOUNTS[name][0],
                        }
                        assert api.post("/subscriptions", json=body).status_code == 201
            for name, collector in collectors.items():
                tokens = {o.instrument_token for o in chains[name]}
                collector.wait_for(
                    lambda c, t=tokens: (
                        t <= {x["instrument_token"] for x in c.options()} and bool(c.underlying())
                    ),
                    60,
                    f"{name}'s options and index, live",
                )
            heard = {name: (c.options(), c.underlying()) for name, c in collectors.items()}
            sockets = {
                (client.api_key, token)
                for client in kite.clients()
                if client.open
                for token in client.subscribed
            }
    for name, (ticks, index) in heard.items():
        _check(name, chains[name], prices, ticks, index, sockets)


def _check(
    name: str,
    chain: list[Instrument],
    prices: dict[int, float],
    ticks: list[dict[str, Any]],
    index: list[dict[str, Any]],
    sockets: set[tuple[str, int]],
) -> None:
    assert {t["instrument_token"] for t in ticks} == {o.instrument_token for o in chain}, name
    for tick in ticks:
        assert tick["symbol"] == name and tick["is_mock"] is False
        assert tick["last_price"] == prices[tick["instrument_token"]]
        assert tick["iv"] == pytest.approx(VOL, abs=0.01), tick
    assert {(t["instrument_token"], t["close"]) for t in index} == {
        (KNOWN[name].index_token, SPOTS[name])
    }
    key = ACCOUNTS[name][1]
    assert {(key, o.instrument_token) for o in chain} <= sockets, f"{name} on {key}'s sockets"
    other = next(k for n, (_, k, _) in ACCOUNTS.items() if n != name)
    assert not {(other, o.instrument_token) for o in chain} & sockets
    # the indices take the accounts in turn: each index on its own key, not both on a's
    assert (key, KNOWN[name].index_token) in sockets, f"{name}'s index on {key}"
    assert (other, KNOWN[name].index_token) not in sockets
