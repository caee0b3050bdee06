"""Kite's text side of the WebSocket: the connect URL, control messages, and text frames.

The client sends JSON ``{"a": action, "v": value}`` (subscribe, unsubscribe, mode);
Kite sends JSON ``{"type": "order"|"error"|"message", "data": ...}`` as text frames
(order updates, connection errors, broker messages). Market data is always binary.
A text frame that is not one of these becomes ``Unreadable``, so that a feed can log
it and carry on: nothing here raises on what the server sends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, get_args
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from tickfleet.kite.packets import TickMode

KITE_WS_URL: Final = "wss://ws.kite.trade"
MODES: Final[tuple[TickMode, ...]] = get_args(TickMode)
_REDACTED: Final = "***"
_SHOWN: Final = 200  # characters of an unreadable frame kept for the log


def connect_url(base: str, api_key: str, access_token: str) -> str:
    """The URL the WebSocket handshake goes to: credentials travel as query parameters."""
    query = urlencode({"api_key": api_key, "access_token": access_token})
    return f"{base}{'&' if urlsplit(base).query else '?'}{query}"


def redact(url: str) -> str:
    """``url`` fit for a log: every ``access_token`` value replaced by ``***``."""
    parts = urlsplit(url)
    query = [
        (name, _REDACTED if name == "access_token" else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


_TOKEN_IN_TEXT: Final = re.compile(r"(access_token=)[^&\s\"']+")


def redact_text(text: str) -> str:
    """``text`` with every ``access_token=...`` value replaced by ``***``."""
    return _TOKEN_IN_TEXT.sub(r"\1" + _REDACTED, text)


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for the websockets library, whose debug lines show the handshake's URL
    (and so the access token): every message is redacted before it is logged."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self.logger.log(level, redact_text(text), **kwargs)


def subscribe(tokens: Iterable[int]) -> str:
    """Start streaming ``tokens``; Kite puts newly subscribed tokens in quote mode."""
    return _action("subscribe", [int(t) for t in tokens])


def unsubscribe(tokens: Iterable[int]) -> str:
    return _action("unsubscribe", [int(t) for t in tokens])


def set_mode(mode: TickMode, tokens: Iterable[int]) -> str:
    """Stream ``tokens`` in ``mode``; Kite applies it only to tokens already subscribed."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    return _action("mode", [mode, [int(t) for t in tokens]])


def _action(action: str, value: object) -> str:
    return orjson.dumps({"a": action, "v": value}).decode()


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """An order's new state, the same document as a postback."""

    data: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class ErrorMessage:
    """An error Kite reports on the connection (it may close it next)."""

    text: str


@dataclass(frozen=True, slots=True)
class BrokerMessage:
    """A message or alert from the broker."""

    text: str


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A text frame that is none of the above: why, and its first 200 characters."""

    reason: str
    text: str


TextMessage = OrderUpdate | ErrorMessage | BrokerMessage | Unreadable


def parse_text(message: str | bytes) -> TextMessage:
    """What a text frame says; never raises."""
    try:
        document = orjson.loads(message)
    except orjson.JSONDecodeError as e:
        return _unreadable(f"invalid JSON: {e}", message)
    read = _read(document)
    return _unreadable(read, message) if isinstance(read, str) else read


def _read(document: object) -> OrderUpdate | ErrorMessage | BrokerMessage | str:
    """The message, or why it is none."""
    if not isinstance(document, dict):
        return "not a JSON object"
    kind, data = document.get("type"), document.get("data")
    if kind == "order":
        return OrderUpdate(data) if isinstance(data, dict) and data else "an order without data"
    if kind == "error":
        return ErrorMessage(_as_text(data))
    if kind == "message":
        return BrokerMessage(_as_text(data))
    return f"unknown type {kind!r}"


def _as_text(data: object) -> str:
    return data if isinstance(data, str) else orjson.dumps(data).decode()


def _unreadable(reason: str, message: str | bytes) -> Unreadable:
    if isinstance(message, bytes):
        message = message[: _SHOWN * 4].decode("utf-8", errors="replace")
    return Unreadable(reason, message[:_SHOWN])
