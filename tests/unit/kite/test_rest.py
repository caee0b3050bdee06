"""The fleet's Kite REST adapter against the local Kite REST server, over loopback."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from datetime import date

import pytest

from producers.kite_sim.local_rest import KiteRestServer
from tests.support.ports import free_port
from tickfleet.config.settings import Settings
from tickfleet.instruments import parse_dump, select_underlyings
from tickfleet.instruments.universe import UniverseSpec, generate_universe
from tickfleet.kite.rest import (
    LTP_BATCH,
    KiteRestClient,
    KiteRestError,
    KiteSessionRefused,
    KiteUnavailable,
)

SECRET = "tok-3f9a-SECRET"
ACCOUNTS = {"key_a": SECRET, "key_b": "token_b"}
SPEC = UniverseSpec(
    spot=24000.0,
    strike_step=50,
    strikes_each_side=3,
    weekly_expiries=2,
    monthly_expiries=1,
    expiry_weekday=1,
    lot_size=65,
)
UNIVERSE = generate_universe(date(2026, 1, 5), 24000.0, SPEC)
INDEX = "NSE:NIFTY 50"
pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def rest() -> Iterator[KiteRestServer]:
    with KiteRestServer(ACCOUNTS, instruments=UNIVERSE) as server:
        yield server


@pytest.fixture
def client(rest: KiteRestServer) -> Iterator[KiteRestClient]:
    with KiteRestClient("key_a", SECRET, root=rest.url, timeout=5) as kite:
        yield kite


def test_the_dump_round_trips_through_the_fleets_parser(
    rest: KiteRestServer, client: KiteRestClient
) -> None:
    assert parse_dump(client.instruments_dump()) == UNIVERSE
    assert parse_dump(client.instruments_dump("NFO")) == UNIVERSE[1:]
    assert select_underlyings(parse_dump(client.instruments_dump()), ["NIFTY"]) == UNIVERSE
    paths = [r.path for r in rest.request_log()]
    assert paths == ["/instruments", "/instruments/NFO", "/instruments"]


def test_last_prices_by_key_in_batches_of_kites_limit(
    rest: KiteRestServer, client: KiteRestClient
) -> None:
    option = f"NFO:{UNIVERSE[1].tradingsymbol}"
    rest.set_price(INDEX, 24012.5)
    rest.set_price(option, 152.35)
    unknown = [f"NFO:NOSUCH{n}" for n in range(LTP_BATCH + 10)]
    assert client.last_prices([INDEX, option, INDEX, *unknown]) == {INDEX: 24012.5, option: 152.35}
    assert [len(r.instruments) for r in rest.request_log()] == [LTP_BATCH, 12]
    assert client.last_prices([]) == {}
    assert len(rest.request_log()) == 2


def test_a_refused_session_never_shows_the_token(
    rest: KiteRestServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rest.set_price(INDEX, 24000.0)
    settings = Settings(kite_api_key="key_a", kite_access_token=SECRET, kite_api_url=rest.url)
    with KiteRestClient.from_settings(settings, timeout=5) as kite:
        assert kite.last_prices([INDEX]) == {INDEX: 24000.0}
        rest.set_access_token("renewed", api_key="key_a")
        failures: list[KiteRestError] = []
        for call in (kite.instruments_dump, lambda: kite.last_prices([INDEX])):
            with pytest.raises(KiteSessionRefused) as refused:
                call()
            failures.append(refused.value)
        assert SECRET not in repr(kite)
    assert "TokenException (HTTP 403)" in str(failures[0])
    shown = [str(e) + repr(e) + "".join(traceback.format_exception(e)) for e in failures]
    assert not [text for text in shown if SECRET in text]
    assert "GET /quote/ltp" in caplog.text  # the HTTP client's own debug lines are there
    assert SECRET not in caplog.text
    assert [r.status for r in rest.request_log()] == [200, 403, 403]


def test_each_account_uses_its_own_token(rest: KiteRestServer) -> None:
    rest.set_price(INDEX, 24000.0)
    with (
        KiteRestClient("key_a", SECRET, root=rest.url, timeout=5) as a,
        KiteRestClient("key_b", "token_b", root=rest.url, timeout=5) as b,
        KiteRestClient("key_b", SECRET, root=rest.url, timeout=5) as crossed,
    ):
        assert a.last_prices([INDEX]) == b.last_prices([INDEX]) == {INDEX: 24000.0}
        with pytest.raises(KiteSessionRefused):
            crossed.last_prices([INDEX])
        rest.refuse(api_key="key_b")
        with pytest.raises(KiteSessionRefused):
            b.last_prices([INDEX])
        assert a.last_prices([INDEX]) == {INDEX: 24000.0}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_failures_are_unavailable(
    rest: KiteRestServer, client: KiteRestClient, status: int
) -> None:
    rest.fail(status)
    with pytest.raises(KiteUnavailable, match=f"HTTP {status}"):
        client.instruments_dump()


def test_an_unreachable_or_silent_kite_is_unavailable(rest: KiteRestServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with (
        KiteRestClient("key_a", SECRET, root=closed, timeout=5) as nobody,
        pytest.raises(KiteUnavailable, match="ConnectionError") as unreachable,
    ):
        nobody.last_prices([INDEX])
    assert SECRET not in str(unreachable.value)
    rest.stall()
    with (
        KiteRestClient("key_a", SECRET, root=rest.url, timeout=0.3) as slow,
        pytest.raises(KiteUnavailable, match="Timeout"),
    ):
        slow.instruments_dump()
    rest.resume()


def test_other_refusals_are_neither_kind(rest: KiteRestServer, client: KiteRestClient) -> None:
    rest.fail(400)
    with pytest.raises(KiteRestError) as refused:
        client.last_prices([INDEX])
    assert type(refused.value) is KiteRestError


def test_settings_without_a_session_make_no_client() -> None:
    with pytest.raises(ValueError, match="KITE_ACCESS_TOKEN"):
        KiteRestClient.from_settings(Settings(kite_api_key="key_a"))
