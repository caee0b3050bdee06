"""Ticks encoded as Kite sends them: the inverse of ``packets``, for test servers and tests.

The packet kind follows from the tick: ``ltp`` mode gives the 8-byte packet, index
tokens (segment INDICES) in quote/full mode the 28/32-byte index packets, everything
else the 44/184-byte ones. Prices are rounded to the segment's integer units. Only
index packets carry ``change``; for the others the receiver computes it, so it is not
encoded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Final

from tickfleet.kite.packets import (
    FULL_PACKET,
    INDEX_FULL_PACKET,
    INDEX_QUOTE_PACKET,
    LTP_PACKET,
    QUOTE_PACKET,
    Tick,
    price_divisor,
)
from tickfleet.kite.tokens import SEGMENT_IDS

HEARTBEAT: Final = b"\x00"
"""What Kite sends when it has nothing to stream: one byte."""

_MAX_COUNT: Final = 0xFFFF
_COUNT: Final = struct.Struct(">H")

# Each kind's fields after the instrument token, in wire order.
_LTP: Final = ("last_price",)
_INDEX_QUOTE: Final = ("last_price", "high", "low", "open", "close", "change")
_INDEX_FULL: Final = (*_INDEX_QUOTE, "exchange_timestamp")
_QUOTE: Final = (
    "last_price",
    "last_traded_quantity",
    "average_traded_price",
    "volume_traded",
    "total_buy_quantity",
    "total_sell_quantity",
    "open",
    "high",
    "low",
    "close",
)
_FULL: Final = (*_QUOTE, "last_trade_time", "oi", "oi_day_high", "oi_day_low", "exchange_timestamp")
_PRICES: Final = frozenset(
    {"last_price", "average_traded_price", "open", "high", "low", "close", "change"}
)
_LAYOUTS: Final = {
    _LTP: LTP_PACKET,
    _INDEX_QUOTE: INDEX_QUOTE_PACKET,
    _INDEX_FULL: INDEX_FULL_PACKET,
    _QUOTE: QUOTE_PACKET,
    _FULL: FULL_PACKET,
}


def encode_frame(ticks: Iterable[Tick]) -> bytes:
    """One binary message holding every tick, in order."""
    return frame([encode_packet(tick) for tick in ticks])


def frame(packets: Sequence[bytes]) -> bytes:
    """Packets as one binary message: their count, then each one's length and bytes.

    Takes any bytes as packets, so that tests can frame packets of unknown lengths.
    """
    if len(packets) > _MAX_COUNT or any(len(p) > _MAX_COUNT for p in packets):
        raise ValueError("a frame holds at most 65535 packets of at most 65535 bytes")
    parts = [_COUNT.pack(len(packets))]
    for packet in packets:
        parts += (_COUNT.pack(len(packet)), packet)
    return b"".join(parts)


def encode_packet(tick: Tick) -> bytes:
    """The packet Kite would send for ``tick``.

    ValueError when a field its kind needs is None or a value does not fit the wire.
    """
    names = _fields_of(tick)
    values = _wire_values(tick, names)
    if names is _FULL:
        values += _depth_values(tick)
    try:
        return _LAYOUTS[names].pack(tick.instrument_token, *values)
    except struct.error as e:
        raise ValueError(f"{tick.mode} tick of {tick.instrument_token}: {e}") from None


def _fields_of(tick: Tick) -> tuple[str, ...]:
    index = tick.instrument_token & 0xFF == SEGMENT_IDS["INDICES"]
    if tick.mode == "ltp":
        return _LTP
    if tick.mode == "quote":
        return _INDEX_QUOTE if index else _QUOTE
    return _INDEX_FULL if index else _FULL


def _wire_values(tick: Tick, names: tuple[str, ...]) -> list[int]:
    divisor = price_divisor(tick.instrument_token)
    values: list[int] = []
    for name in names:
        value = getattr(tick, name)
        if value is None:
            raise ValueError(f"{tick.mode} tick of {tick.instrument_token} needs {name}")
        values.append(round(value * divisor) if name in _PRICES else value)
    return values


def _depth_values(tick: Tick) -> list[int]:
    if tick.depth is None:
        raise ValueError(f"full tick of {tick.instrument_token} needs depth")
    buy, sell = tick.depth
    if len(buy) != 5 or len(sell) != 5:
        raise ValueError(f"depth needs 5 buy and 5 sell entries, got {len(buy)} and {len(sell)}")
    divisor = price_divisor(tick.instrument_token)
    return [
        value
        for quantity, price, orders in (*buy, *sell)
        for value in (quantity, round(price * divisor), orders)
    ]
