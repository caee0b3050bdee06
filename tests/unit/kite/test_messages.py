"""Kite's text side: control messages and the connect URL as the official client makes them,
and text frames read the way it reads them, without ever raising.

The official ``KiteTicker`` runs without a connection: its ``ws`` is replaced by a recorder
of the messages it would send.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kiteconnect import KiteTicker

from tickfleet.kite import (
    KITE_WS_URL,
    BrokerMessage,
    ErrorMessage,
    OrderUpdate,
    Unreadable,
    connect_url,
    parse_text,
    redact,
    set_mode,
    subscribe,
    unsubscribe,
)


class Recorder:
    """Stands in for the official client's socket: keeps what it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def sendMessage(self, payload: bytes) -> None:  # noqa: N802 - autobahn's name
        self.sent.append(json.loads(payload))


def official() -> tuple[Any, Recorder]:
    ticker = KiteTicker("api_key", "access_token")
    recorder = Recorder()
    ticker.ws = recorder
    return ticker, recorder


TOKENS = [256265, 408065, 13_000_002]


def test_control_messages_are_the_official_clients() -> None:
    ticker, recorder = official()
    ticker.subscribe(TOKENS)
    ticker.set_mode(ticker.MODE_FULL, TOKENS[:1])
    ticker.set_mode(ticker.MODE_LTP, TOKENS[1:])
    ticker.unsubscribe(TOKENS[2:])
    ours = [
        subscribe(TOKENS),
        set_mode("full", TOKENS[:1]),
        set_mode("ltp", TOKENS[1:]),
        unsubscribe(TOKENS[2:]),
    ]
    assert [json.loads(message) for message in ours] == recorder.sent
    assert recorder.sent[1] == {"a": "mode", "v": ["full", [256265]]}


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="FULL"):
        set_mode("FULL", TOKENS)  # type: ignore[arg-type]


def test_the_connect_url_is_the_official_clients() -> None:
    ticker = KiteTicker("my_key", "my_token")
    assert connect_url(KITE_WS_URL, "my_key", "my_token") == ticker.socket_url
    assert connect_url("ws://127.0.0.1:9/ws?v=3", "k", "t") == (
        "ws://127.0.0.1:9/ws?v=3&api_key=k&access_token=t"
    )


def test_the_url_is_logged_without_its_access_token() -> None:
    url = connect_url(KITE_WS_URL, "my_key", "s3cret/+token")
    assert redact(url) == "wss://ws.kite.trade?api_key=my_key&access_token=***"
    assert "s3cret" not in redact(url)
    assert redact("ws://h/p?access_token=a&x=1&access_token=b") == (
        "ws://h/p?access_token=***&x=1&access_token=***"
    )
    assert redact(KITE_WS_URL) == KITE_WS_URL


def test_text_frames() -> None:
    order = {"order_id": "1", "status": "COMPLETE"}
    assert parse_text(json.dumps({"type": "order", "data": order})) == OrderUpdate(order)
    assert parse_text(b'{"type": "error", "data": "bad token"}') == ErrorMessage("bad token")
    assert parse_text('{"type": "message", "data": "hello"}') == BrokerMessage("hello")
    assert parse_text('{"type": "message", "data": {"x": 1}}') == BrokerMessage('{"x":1}')


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid JSON"),
        (b"\xff\xfe", "invalid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "order", "data": null}', "an order without data"),
        ('{"type": "order", "data": "x"}', "an order without data"),
        ('{"type": "quote"}', "unknown type 'quote'"),
        ("{}", "unknown type None"),
    ],
)
def test_unreadable_text_frames_say_why(text: str | bytes, reason: str) -> None:
    read = parse_text(text)
    assert isinstance(read, Unreadable)
    assert read.reason.startswith(reason)


def test_an_unreadable_frame_keeps_only_its_start() -> None:
    read = parse_text("x" * 10_000)
    assert isinstance(read, Unreadable) and read.text == "x" * 200


@pytest.mark.timeout(60)
@settings(max_examples=150, deadline=None)
@given(st.text() | st.binary())
def test_any_text_frame_is_read_without_raising(text: str | bytes) -> None:
    assert isinstance(parse_text(text), OrderUpdate | ErrorMessage | BrokerMessage | Unreadable)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@pytest.mark.timeout(60)
@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["order", "error", "message", "other"]), JSON)
def test_text_frames_are_read_as_the_official_client_reads_them(kind: str, data: object) -> None:
    ticker, _ = official()
    orders: list[object] = []
    errors: list[object] = []
    ticker.on_order_update = lambda ws, update: orders.append(update)
    ticker.on_error = lambda ws, code, reason: errors.append(reason)
    payload = json.dumps({"type": kind, "data": data}).encode()
    ticker._parse_text_message(payload)
    read = parse_text(payload)
    # The official client hands on any truthy data as an order; only an object is one.
    assert isinstance(read, OrderUpdate) == (bool(orders) and isinstance(data, dict))
    if isinstance(read, OrderUpdate):
        assert orders == [read.data]
    assert bool(errors) == isinstance(read, ErrorMessage)
    if isinstance(read, ErrorMessage) and isinstance(data, str):
        assert errors == [read.text]
