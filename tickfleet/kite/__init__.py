"""Kite Connect v3 WebSocket wire protocol: binary tick frames and the JSON text side.

Pure functions and values, no I/O: the live feed and the test server share them.
"""

from tickfleet.kite.encode import HEARTBEAT, encode_frame, encode_packet, frame
from tickfleet.kite.messages import (
    KITE_WS_URL,
    BrokerMessage,
    ErrorMessage,
    OrderUpdate,
    TextMessage,
    Unreadable,
    connect_url,
    parse_text,
    redact,
    set_mode,
    subscribe,
    unsubscribe,
)
from tickfleet.kite.packets import (
    ParsedFrame,
    Tick,
    TickMode,
    is_heartbeat,
    parse_frame,
    price_divisor,
)
from tickfleet.ticks.payloads import Depth, DepthLevel

__all__ = [
    "HEARTBEAT",
    "KITE_WS_URL",
    "BrokerMessage",
    "Depth",
    "DepthLevel",
    "ErrorMessage",
    "OrderUpdate",
    "ParsedFrame",
    "TextMessage",
    "Tick",
    "TickMode",
    "Unreadable",
    "connect_url",
    "encode_frame",
    "encode_packet",
    "frame",
    "is_heartbeat",
    "parse_frame",
    "parse_text",
    "price_divisor",
    "redact",
    "set_mode",
    "subscribe",
    "unsubscribe",
]
