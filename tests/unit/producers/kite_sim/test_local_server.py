"""The local Kite ticker server, driven by the websockets client over loopback."""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import pytest
from kiteconnect import KiteTicker
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from producers.kite_sim.local_server import KiteServer
from tickfleet.kite import (
    ErrorMessage,
    Tick,
    TickMode,
    is_heartbeat,
    parse_frame,
    parse_text,
    set_mode,
    subscribe,
    unsubscribe,
)
from tickfleet.kite.tokens import SEGMENT_IDS, encode_token

INFY = 408065  # NSE
NIFTY = 256265  # NIFTY 50, an index
OPTION = encode_token(5_000_123, SEGMENT_IDS["NFO"])
USDINR = encode_token(1_234, SEGMENT_IDS["CDS"])
TWO_ACCOUNTS = {"key_a": "token_a", "key_b": "token_b"}
pytestmark = pytest.mark.timeout(30)

StartKite = Callable[..., KiteServer]


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def start_kite() -> Iterator[StartKite]:
    """Starts servers; afterwards their threads, loops, listeners and sockets are all gone."""
    before = open_descriptors()
    started: list[KiteServer] = []

    def start(**options: Any) -> KiteServer:
        server = KiteServer(**{"interval": 0.02, "heartbeat_interval": 0.1, **options})
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()
    assert not [t for t in threading.enumerate() if t.name == "kite-server"]
    assert open_descriptors() <= before


@pytest.fixture
def kite(start_kite: StartKite) -> KiteServer:
    return start_kite()


def latest_ticks(
    ws: ClientConnection, wanted: dict[int, str], timeout: float = 5
) -> dict[int, Tick]:
    """Read frames until every wanted token has come in its wanted mode."""
    seen: dict[int, Tick] = {}
    deadline = time.monotonic() + timeout
    while any(seen.get(t) is None or seen[t].mode != m for t, m in wanted.items()):
        message = ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        if isinstance(message, bytes) and not is_heartbeat(message):
            parsed = parse_frame(message)
            assert parsed.malformed == 0
            seen |= {tick.instrument_token: tick for tick in parsed.ticks}
    return seen


def test_subscribed_tokens_stream_in_their_modes(kite: KiteServer) -> None:
    kite.set_price(INFY, 1573.5)
    with connect(kite.connect_url(), open_timeout=5) as ws:
        ws.send(subscribe([INFY, NIFTY]))
        ticks = latest_ticks(ws, {INFY: "quote", NIFTY: "quote"})
        assert ticks[INFY].last_price == 1573.5 and ticks[INFY].volume_traded is not None
        ws.send(set_mode("full", [NIFTY]))
        ws.send(set_mode("ltp", [12345]))  # not subscribed: ignored, as Kite does
        index = latest_ticks(ws, {NIFTY: "full"})[NIFTY]
        assert index.exchange_timestamp is not None and index.volume_traded is None
        ws.send(unsubscribe([INFY]))
        time.sleep(0.1)
        assert kite.subscriptions() == [{NIFTY: "full"}]
    (client,) = kite.clients()
    assert client.received[:3] == (
        {"a": "subscribe", "v": [INFY, NIFTY]},
        {"a": "mode", "v": ["full", [NIFTY]]},
        {"a": "mode", "v": ["ltp", [12345]]},
    )


def test_wrong_credentials_and_a_refusing_server_get_403(kite: KiteServer) -> None:
    for url in (kite.connect_url("wrong-token"), kite.url):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=5)
        assert refused.value.response.status_code == 403
    kite.refuse()
    with pytest.raises(InvalidStatus):
        connect(kite.connect_url(), open_timeout=5)
    kite.refuse(False)
    kite.set_access_token("renewed")
    with pytest.raises(InvalidStatus):
        connect(kite.connect_url("test_access_token"), open_timeout=5)
    with connect(kite.connect_url(), open_timeout=5):
        assert kite.live_connections == 1
    assert kite.refused_handshakes == 4


def test_a_drop_closes_the_connection_without_a_close_frame(kite: KiteServer) -> None:
    with connect(kite.connect_url(), open_timeout=5) as ws:
        assert kite.drop_connections() == 1
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is None
    assert kite.live_connections == 0


def test_heartbeats_stalls_and_injected_frames(kite: KiteServer) -> None:
    with connect(kite.connect_url(), open_timeout=5, close_timeout=0.2) as ws:
        assert ws.recv(timeout=5) == b"\x00"  # nothing subscribed: heartbeats
        ws.send(subscribe([INFY]))
        latest_ticks(ws, {INFY: "quote"})
        assert kite.stall() == 1
        for _ in range(10):  # what was in flight, then silence
            try:
                ws.recv(timeout=0.3)
            except TimeoutError:
                break
        else:
            pytest.fail("a stalled connection kept sending")
        pong = ws.ping()
        assert not pong.wait(0.3)  # pings go unanswered too
        assert kite.live_connections == 1
        kite.resume()
        assert pong.wait(5)
        latest_ticks(ws, {INFY: "quote"})
        assert kite.send_malformed() == 1
        assert kite.send_text("error", "token expired") == 1
        malformed = text = None
        while malformed is None or text is None:
            message = ws.recv(timeout=5)
            if isinstance(message, str):
                text = parse_text(message)
            elif not parse_frame(message).ticks and not is_heartbeat(message):
                malformed = parse_frame(message).malformed
        assert malformed >= 1 and text == ErrorMessage("token expired")
        kite.stall()  # the fixture's stop() must not wait on a silent connection


def handshake(url: str) -> int:
    """101 when the server accepts the handshake, else the status it refused it with."""
    try:
        with connect(url, open_timeout=5):
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


def test_each_account_has_its_own_token_and_connections(start_kite: StartKite) -> None:
    kite = start_kite(credentials=TWO_ACCOUNTS)
    assert kite.api_key == "key_a"
    assert handshake(kite.connect_url("token_b", api_key="key_a")) == 403
    a_url, b_url = kite.connect_url(), kite.connect_url(api_key="key_b")
    with connect(a_url, open_timeout=5) as a, connect(b_url, open_timeout=5):
        assert [(c.api_key, c.open) for c in kite.clients()] == [("key_a", True), ("key_b", True)]
        kite.set_access_token("token_a2", api_key="key_a")
        assert a.recv(timeout=5) == b"\x00"  # an open connection is not touched
    assert handshake(a_url) == 403  # the old token of key_a
    assert handshake(kite.connect_url(api_key="key_a")) == 101
    assert "token_a2" in kite.connect_url()
    assert handshake(b_url) == 101
    kite.refuse(api_key="key_b")
    assert (handshake(b_url), handshake(kite.connect_url())) == (403, 101)
    kite.refuse(False, api_key="key_b")
    assert handshake(b_url) == 101
    kite.refuse()
    assert (handshake(b_url), handshake(kite.connect_url())) == (403, 403)
    kite.refuse(False)
    assert (handshake(b_url), handshake(kite.connect_url())) == (101, 101)
    assert kite.refused_handshakes == 5
    accepted = [c.api_key for c in kite.clients()][2:]
    assert accepted == ["key_a", "key_b", "key_a", "key_b", "key_b", "key_a"]


def packet_lengths(frame: bytes) -> dict[int, int]:
    """Each packet's length by its token, walked by hand from the frame's header."""
    (count,) = struct.unpack_from(">H", frame)
    at, lengths = 2, {}
    for _ in range(count):
        (length,) = struct.unpack_from(">H", frame, at)
        (token,) = struct.unpack_from(">I", frame, at + 2)
        lengths[token] = length
        at += 2 + length
    assert at == len(frame)
    return lengths


KITE_LENGTHS: Mapping[TickMode, Mapping[int, int]] = {
    "ltp": {OPTION: 8, NIFTY: 8},
    "quote": {OPTION: 44, NIFTY: 28},
    "full": {OPTION: 184, NIFTY: 32},
}


@pytest.mark.parametrize("mode", ["ltp", "quote", "full"])
def test_frames_have_kites_packets_for_the_official_parser(
    start_kite: StartKite, mode: TickMode
) -> None:
    kite = start_kite(clock=lambda: 1_767_000_000.0)
    kite.set_price(OPTION, 152.35)
    kite.set_price(NIFTY, 24012.45)
    with connect(kite.connect_url(), open_timeout=5) as ws:
        ws.send(subscribe([OPTION, NIFTY]))
        ws.send(set_mode(mode, [OPTION, NIFTY]))
        deadline = time.monotonic() + 5
        while True:
            message = ws.recv(timeout=max(0.0, deadline - time.monotonic()))
            if isinstance(message, bytes) and packet_lengths(message) == KITE_LENGTHS[mode]:
                break
    decoded = KiteTicker("api_key", "access_token")._parse_binary(message)
    option, index = sorted(decoded, key=lambda tick: tick["instrument_token"] != OPTION)
    assert (option["mode"], option["tradable"], option["last_price"]) == (mode, True, 152.35)
    assert (index["mode"], index["tradable"], index["last_price"]) == (mode, False, 24012.45)
    if mode == "ltp":
        return
    day = {"open": 24012.45, "high": 24012.45, "low": 24012.45, "close": 24012.45}
    assert index["ohlc"] == day and index["change"] == 0
    assert option["ohlc"]["close"] == 152.35 and option["total_buy_quantity"] > 0
    if mode == "full":
        stamp = datetime.fromtimestamp(1_767_000_000)
        assert index["exchange_timestamp"] == option["exchange_timestamp"] == stamp
        bids, offers = option["depth"]["buy"], option["depth"]["sell"]
        assert len(bids) == len(offers) == 5
        assert bids[0]["price"] < 152.35 < offers[0]["price"]


def test_instruments_walk_from_their_starting_prices(start_kite: StartKite) -> None:
    kite = start_kite(instruments={NIFTY: 24000.0, OPTION: 1500.0})
    with connect(kite.connect_url(), open_timeout=5) as ws:
        ws.send(subscribe([NIFTY, OPTION]))
        first = latest_ticks(ws, {NIFTY: "quote", OPTION: "quote"})
        assert (first[NIFTY].close, first[OPTION].close) == (24000.0, 1500.0)
        moved: dict[int, Tick] = {}
        deadline = time.monotonic() + 5
        while len(moved) < 2:
            assert time.monotonic() < deadline, "the prices did not walk"
            ticks = latest_ticks(ws, {NIFTY: "quote", OPTION: "quote"})
            moved |= {t: tick for t, tick in ticks.items() if tick.last_price != tick.close}
    for token, start in ((NIFTY, 24000.0), (OPTION, 1500.0)):
        assert abs(moved[token].last_price / start - 1) < 0.05


def test_starting_prices_must_fit_the_wire() -> None:
    with pytest.raises(ValueError, match="ltp tick"):
        KiteServer(instruments={USDINR: 500.0})  # CDS prices end below 429.5 on the wire


def test_handshakes_are_logged_without_their_token(
    kite: KiteServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert handshake(kite.connect_url()) == 101
    assert handshake(kite.connect_url("wrong-secret")) == 403
    logged = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("producers.kite_sim")
    )
    assert "access_token=***" in logged
    assert "test_access_token" not in logged and "wrong-secret" not in logged
