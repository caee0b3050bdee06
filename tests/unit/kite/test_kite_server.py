"""The local Kite ticker server, driven by the websockets client over loopback."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.support.kite_server import KiteServer
from tickfleet.kite import (
    ErrorMessage,
    Tick,
    is_heartbeat,
    parse_frame,
    parse_text,
    set_mode,
    subscribe,
    unsubscribe,
)

INFY = 408065  # NSE
NIFTY = 256265  # NIFTY 50, an index
pytestmark = pytest.mark.timeout(30)


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def kite() -> Iterator[KiteServer]:
    """A started server; afterwards its thread, loop, listener and sockets are all gone."""
    before = open_descriptors()
    with KiteServer(interval=0.02, heartbeat_interval=0.1) as server:
        yield server
    assert not [t for t in threading.enumerate() if t.name == "kite-server"]
    assert open_descriptors() <= before


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
