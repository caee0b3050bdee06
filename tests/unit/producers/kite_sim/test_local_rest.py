"""The local Kite REST server, with the official ``kiteconnect`` client as the reference.

What the official client makes of the answers (its routes, headers, CSV and JSON parsing,
its exception per ``error_type``) is what Kite's real API would give it; the quote shapes
are those of Kite's published reference responses (kiteconnect-mocks' quote.json,
ltp.json, ohlc.json).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from kiteconnect import KiteConnect
from kiteconnect.exceptions import GeneralException, NetworkException, TokenException

from producers.kite_sim.local_rest import KiteRestServer, RestRequest
from tickfleet.instruments import read_dump
from tickfleet.instruments.universe import UniverseSpec, generate_universe

NSE_DUMP = Path(__file__).resolve().parents[2] / "instruments" / "data" / "instruments_nse.csv"
SPEC = UniverseSpec(
    spot=24000.0,
    strike_step=50,
    strikes_each_side=2,
    weekly_expiries=2,
    monthly_expiries=1,
    expiry_weekday=1,
    lot_size=65,
)
UNIVERSE = generate_universe(date(2026, 1, 5), 24000.0, SPEC)
TWO_ACCOUNTS = {"key_a": "token_a", "key_b": "token_b"}
INDEX = "NSE:NIFTY 50"
NOON_IST = 1_767_594_600.0  # 2026-01-05 12:00 in Asia/Kolkata
pytestmark = pytest.mark.timeout(30)

# The keys of Kite's reference responses.
LTP_KEYS = {"instrument_token", "last_price"}
OHLC_KEYS = {"instrument_token", "last_price", "ohlc"}
QUOTE_KEYS = {
    *OHLC_KEYS,
    *("timestamp", "last_trade_time", "last_quantity", "buy_quantity", "sell_quantity"),
    *("volume", "average_price", "oi", "oi_day_high", "oi_day_low", "net_change"),
    *("lower_circuit_limit", "upper_circuit_limit", "depth"),
}

StartRest = Callable[..., KiteRestServer]
Official = Callable[[KiteRestServer, str, str | None], Any]


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def start_rest() -> Iterator[StartRest]:
    """Starts servers; afterwards their threads and sockets are all gone."""
    before = open_descriptors()
    started: list[KiteRestServer] = []

    def start(**options: Any) -> KiteRestServer:
        server = KiteRestServer(**{"instruments": UNIVERSE, **options})
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()
    assert not [t for t in threading.enumerate() if t.name == "kite-rest"]
    assert open_descriptors() <= before


@pytest.fixture
def official(start_rest: StartRest) -> Iterator[Official]:
    """The official client of an account (its HTTP sessions closed afterwards)."""
    clients: list[Any] = []

    def client(server: KiteRestServer, api_key: str, access_token: str | None) -> Any:
        kite = KiteConnect(api_key, access_token, root=server.url, timeout=5)
        clients.append(kite)
        return kite

    yield client
    for kite in clients:
        kite.reqsession.close()


def test_the_official_client_reads_the_dump(start_rest: StartRest, official: Official) -> None:
    nse = read_dump(NSE_DUMP)
    rest = start_rest(instruments=[*nse, *UNIVERSE])
    kite = official(rest, "test_api_key", "test_access_token")
    rows = kite.instruments()
    assert [row["tradingsymbol"] for row in rows] == [i.tradingsymbol for i in [*nse, *UNIVERSE]]
    nfo = kite.instruments("NFO")
    assert len(nfo) == len(UNIVERSE) - 1 and {row["exchange"] for row in nfo} == {"NFO"}
    option = next(i for i in UNIVERSE if i.instrument_type == "PE")
    row = next(r for r in nfo if r["instrument_token"] == option.instrument_token)
    assert (row["expiry"], row["strike"], row["lot_size"]) == (option.expiry, option.strike, 65)
    assert kite.instruments("MCX") == []
    rest.set_instruments(nse)
    assert kite.instruments("NFO") == []


def test_quotes_come_in_kites_shapes(start_rest: StartRest, official: Official) -> None:
    rest = start_rest(clock=lambda: NOON_IST)
    option = UNIVERSE[1]
    option_key = f"NFO:{option.tradingsymbol}"
    rest.set_price(INDEX, 24010.0, close=23900.0)
    rest.set_price(INDEX, 24100.5)
    rest.set_price(INDEX, 23950.0)
    rest.set_price(option_key, 152.35)
    kite = official(rest, "test_api_key", "test_access_token")
    assert kite.ltp([INDEX, option_key, "NSE:UNKNOWN"]) == {
        INDEX: {"instrument_token": 256265, "last_price": 23950.0},
        option_key: {"instrument_token": option.instrument_token, "last_price": 152.35},
    }
    day = {"open": 24010.0, "high": 24100.5, "low": 23950.0, "close": 23900.0}
    assert kite.ohlc(INDEX) == {
        INDEX: {"instrument_token": 256265, "last_price": 23950.0, "ohlc": day}
    }
    quote = kite.quote([INDEX])[INDEX]
    assert set(quote) == QUOTE_KEYS
    assert quote["timestamp"] == quote["last_trade_time"] == datetime(2026, 1, 5, 12, 0)
    assert (quote["last_price"], quote["net_change"], quote["ohlc"]) == (23950.0, 50.0, day)
    assert (quote["lower_circuit_limit"], quote["upper_circuit_limit"]) == (21510.0, 26290.0)
    assert [len(quote["depth"][side]) for side in ("buy", "sell")] == [5, 5]
    assert set(quote["depth"]["buy"][0]) == {"price", "quantity", "orders"}
    assert set(kite.ltp(INDEX)[INDEX]) == LTP_KEYS and set(kite.ohlc(INDEX)[INDEX]) == OHLC_KEYS


def test_a_wrong_or_refused_token_is_a_token_exception(
    start_rest: StartRest, official: Official
) -> None:
    rest = start_rest()
    rest.set_price(INDEX, 24000.0)
    for api_key, token in (("test_api_key", "wrong-secret"), ("other_key", "test_access_token")):
        with pytest.raises(TokenException) as refused:
            official(rest, api_key, token).ltp(INDEX)
        assert refused.value.code == 403
    with pytest.raises(TokenException):
        official(rest, "test_api_key", None).ltp(INDEX)  # no Authorization header at all
    good = official(rest, "test_api_key", "test_access_token")
    rest.refuse()
    with pytest.raises(TokenException):
        good.ltp(INDEX)
    rest.refuse(False)
    assert good.ltp(INDEX)[INDEX]["last_price"] == 24000.0
    log = rest.request_log()
    assert [(r.api_key, r.status) for r in log] == [
        ("test_api_key", 403),
        ("other_key", 403),
        (None, 403),
        ("test_api_key", 403),
        ("test_api_key", 200),
    ]
    assert log[-1] == RestRequest("/quote/ltp", (INDEX,), "test_api_key", "3", 200)
    assert "secret" not in repr(log) and "test_access_token" not in repr(log)


def test_two_accounts_and_a_renewed_token(start_rest: StartRest, official: Official) -> None:
    rest = start_rest(credentials=TWO_ACCOUNTS)
    rest.set_price(INDEX, 24000.0)
    a, b = official(rest, "key_a", "token_a"), official(rest, "key_b", "token_b")
    assert a.ltp(INDEX) == b.ltp(INDEX)
    with pytest.raises(TokenException):
        official(rest, "key_a", "token_b").ltp(INDEX)
    rest.set_access_token("token_a2", api_key="key_a")
    with pytest.raises(TokenException):
        a.ltp(INDEX)
    assert official(rest, "key_a", "token_a2").ltp(INDEX) == b.ltp(INDEX)
    rest.refuse(api_key="key_b")
    with pytest.raises(TokenException):
        b.ltp(INDEX)
    answered = [(r.api_key, r.status) for r in rest.request_log()]
    assert answered == [
        *(("key_a", 200), ("key_b", 200), ("key_a", 403)),
        *(("key_a", 403), ("key_a", 200), ("key_b", 200), ("key_b", 403)),
    ]


def test_outages_and_unknown_routes_answer_kites_errors(
    start_rest: StartRest, official: Official
) -> None:
    rest = start_rest()
    kite = official(rest, "test_api_key", "test_access_token")
    rest.fail(503)
    with pytest.raises(NetworkException) as unavailable:
        kite.ltp(INDEX)
    assert unavailable.value.code == 503
    rest.fail(500)
    with pytest.raises(GeneralException) as failed:
        kite.instruments()
    assert failed.value.code == 500
    rest.fail(None)
    with pytest.raises(GeneralException) as missing:
        kite.margins()  # not a route of this server
    assert missing.value.code == 404
    assert len(kite.instruments()) == len(UNIVERSE)


def test_a_price_needs_a_known_instrument(start_rest: StartRest) -> None:
    rest = start_rest()
    with pytest.raises(ValueError, match="not in the dump"):
        rest.set_price("NSE:INFY", 1500.0)
    with pytest.raises(ValueError, match="EXCHANGE:TRADINGSYMBOL"):
        rest.set_price("NIFTY 50", 24000.0)
    rest.set_price("NSE:INFY", 1500.0, instrument_token=408065)


def test_a_stalled_request_is_answered_on_resume(start_rest: StartRest, official: Official) -> None:
    rest = start_rest()
    rest.set_price(INDEX, 24000.0)
    kite = official(rest, "test_api_key", "test_access_token")
    rest.stall()
    answers: list[Any] = []
    asking = threading.Thread(target=lambda: answers.append(kite.ltp(INDEX)))
    asking.start()
    asking.join(timeout=0.3)
    assert asking.is_alive() and rest.request_log() == []
    rest.resume()
    asking.join(timeout=5)
    assert answers == [{INDEX: {"instrument_token": 256265, "last_price": 24000.0}}]
