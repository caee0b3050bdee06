"""Kite Connect v3 binary WebSocket frames decoded into ``Tick`` records.

A frame is a big-endian uint16 packet count, then per packet a uint16 length and the
packet; the length alone says what the packet holds (8 ltp, 28/32 index quote/full,
44 quote, 184 full). This runs on every frame of every connection, so a run of
same-length packets is decoded in one of two ways, by its length (measured on the
2-core dev box, full-mode packets; the official client: 28k packets/s):

- 32 packets or more: NumPy views the run as one strided array (stride: the packet and
  the next length prefix), divides all prices at once, turns columns into Python values
  with ``tolist`` and assembles records with ``zip``/``map`` in C. 200 packets:
  590k packets/s (quote 1.3M, ltp 2.6M).
- fewer: one precompiled ``struct.unpack_from`` per packet, 400k packets/s (quote 700k,
  ltp 1.4M). NumPy's fixed cost, about 40 µs a run, would make a 1-packet frame cost
  45 µs instead of 4 µs; the two break even between 20 (ltp) and 50 (quote) packets.

Malformed input never raises: what cannot be decoded is counted in ``malformed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from itertools import groupby, repeat
from operator import itemgetter
from struct import Struct
from typing import Final, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from tickfleet.kite.tokens import SEGMENT_IDS
from tickfleet.ticks.payloads import Depth

TickMode = Literal["ltp", "quote", "full"]


class Tick(NamedTuple):
    """One instrument's tick as Kite sent it; fields its mode does not carry are None.

    A NamedTuple rather than a slotted frozen dataclass: built from a tuple it costs
    about 0.3 µs, against 4 µs for the frozen dataclass's ``__init__`` (19 fields),
    and reading a field is as fast.

    Prices are in rupees (the wire's integers over the segment's divisor). ``change``:
    index packets carry it (signed, in price units, e.g. points); for every other
    quote/full packet it is computed as the official client does, the percentage
    change of ``last_price`` from ``close`` (0 when close is 0). ``last_trade_time``
    and ``exchange_timestamp`` are the wire's epoch seconds, as sent (0 included).
    """

    instrument_token: int
    mode: TickMode
    last_price: float
    last_traded_quantity: int | None = None
    average_traded_price: float | None = None
    volume_traded: int | None = None
    total_buy_quantity: int | None = None
    total_sell_quantity: int | None = None
    open: float | None = None
    high: float | None = None
    low: float | None = None
    close: float | None = None
    change: float | None = None
    last_trade_time: int | None = None
    oi: int | None = None
    oi_day_high: int | None = None
    oi_day_low: int | None = None
    exchange_timestamp: int | None = None
    depth: Depth | None = None


class ParsedFrame(NamedTuple):
    """The ticks of one binary message, in frame order, and what could not be decoded.

    ``malformed`` counts one per packet of an unknown length and one per frame that
    cannot be walked to its end (empty, truncated, a length overrunning the frame,
    bytes after the last packet); the ticks before such a break are kept. A heartbeat
    is no tick and nothing malformed.
    """

    ticks: list[Tick]
    malformed: int


# Segments priced in other units than paise. NCO (12) is not in SEGMENT_IDS; the official
# client prices it like BCD.
_NCO_SEGMENT: Final = 12
_DIVISOR_BY_SEGMENT: Final[tuple[float, ...]] = tuple(
    10_000_000.0
    if segment == SEGMENT_IDS["CDS"]
    else 10_000.0
    if segment in (SEGMENT_IDS["BCD"], _NCO_SEGMENT)
    else 100.0
    for segment in range(256)
)
_DIVISORS: Final = np.array(_DIVISOR_BY_SEGMENT)

COLUMNAR_MIN: Final = 32
"""Runs of at least this many same-length packets are decoded by NumPy, shorter by struct."""

_new_tick: Final[Callable[[Iterable[object]], Tick]] = partial(tuple.__new__, Tick)
_LTP_ABSENT: Final = (None,) * (len(Tick._fields) - 3)

# The packet layouts; a packet's length says which one it is.
LTP_PACKET: Final = Struct(">II")  # token, last price
INDEX_QUOTE_PACKET: Final = Struct(">6Ii")  # token, last, high, low, open, close, change
INDEX_FULL_PACKET: Final = Struct(">6IiI")  # ... exchange timestamp
QUOTE_PACKET: Final = Struct(">11I")  # token, last, quantity, average, volume, buy, sell, ohlc
FULL_PACKET: Final = Struct(">16I" + "IIH2x" * 10)  # ... 5 fields, then 5 + 5 depth entries
DEPTH_OFFSET: Final = 64
DEPTH_ENTRY_SIZE: Final = 12  # quantity, price, orders, 2 bytes padding


def price_divisor(instrument_token: int) -> float:
    """What the wire's integer prices of this instrument are divided by to give rupees."""
    return _DIVISOR_BY_SEGMENT[instrument_token & 0xFF]


def is_heartbeat(message: bytes) -> bool:
    """Kite's keep-alive: a 1-byte binary message, sent when there is nothing to stream."""
    return len(message) == 1


def parse_frame(message: bytes) -> ParsedFrame:
    """The ticks of one binary WebSocket message; never raises on malformed input."""
    size = len(message)
    if size < 2:
        return ParsedFrame([], 0 if size == 1 else 1)
    count = message[0] << 8 | message[1]
    if count >= COLUMNAR_MIN and size > 4:
        length = message[2] << 8 | message[3]
        layout = _LAYOUTS.get(length)
        one_run = size == 2 + count * (length + 2)
        if layout is not None and one_run and _same_lengths(message, count, length):
            return ParsedFrame(layout.columns(message, 4, count), 0)
    packets, malformed = _walk(message, count)
    ticks: list[Tick] = []
    for length, run in groupby(packets, key=itemgetter(0)):
        starts = [start for _, start in run]
        layout = _LAYOUTS.get(length)
        if layout is None:
            malformed += len(starts)
        elif len(starts) >= COLUMNAR_MIN:
            ticks += layout.columns(message, starts[0], len(starts))
        else:
            ticks += map(layout.row, repeat(message), starts)
    return ParsedFrame(ticks, malformed)


def _same_lengths(message: bytes, count: int, length: int) -> bool:
    prefixes = np.ndarray((count,), ">u2", message, 2, (length + 2,))
    return bool((prefixes == length).all())


def _walk(message: bytes, count: int) -> tuple[list[tuple[int, int]], int]:
    """(length, start) of every whole packet, and 1 if the frame breaks off or runs on."""
    size = len(message)
    packets: list[tuple[int, int]] = []
    end = 2
    for _ in range(count):
        start = end + 2
        if start > size:
            return packets, 1
        length = message[end] << 8 | message[end + 1]
        end = start + length
        if end > size:
            return packets, 1
        packets.append((length, start))
    return packets, int(end != size)


# --- one packet at a time (struct) ----------------------------------------------------------


def _ltp_row(message: bytes, start: int) -> Tick:
    token, price = LTP_PACKET.unpack_from(message, start)
    return _new_tick((token, "ltp", price / _DIVISOR_BY_SEGMENT[token & 0xFF], *_LTP_ABSENT))


def _index_row(layout: Struct, mode: TickMode, message: bytes, start: int) -> Tick:
    token, last, high, low, open_, close, change, *timestamp = layout.unpack_from(message, start)
    d = _DIVISOR_BY_SEGMENT[token & 0xFF]
    return _new_tick(
        (
            token, mode, last / d, None, None, None, None, None,
            open_ / d, high / d, low / d, close / d, change / d,
            None, None, None, None, timestamp[0] if timestamp else None, None,
        )
    )  # fmt: skip


def _quote_row(message: bytes, start: int) -> Tick:
    token, last, quantity, average, volume, buys, sells, open_, high, low, close = (
        QUOTE_PACKET.unpack_from(message, start)
    )
    d = _DIVISOR_BY_SEGMENT[token & 0xFF]
    last, close_ = last / d, close / d
    return _new_tick(
        (
            token, "quote", last, quantity, average / d, volume, buys, sells,
            open_ / d, high / d, low / d, close_, _percent_change(last, close_),
            None, None, None, None, None, None,
        )
    )  # fmt: skip


def _full_row(message: bytes, start: int) -> Tick:
    v = FULL_PACKET.unpack_from(message, start)
    d = _DIVISOR_BY_SEGMENT[v[0] & 0xFF]
    last, close = v[1] / d, v[10] / d
    # Written out: zip/map over slices of v takes 2 µs here, the literal 0.9 µs.
    buy = (
        (v[16], v[17] / d, v[18]), (v[19], v[20] / d, v[21]), (v[22], v[23] / d, v[24]),
        (v[25], v[26] / d, v[27]), (v[28], v[29] / d, v[30]),
    )  # fmt: skip
    sell = (
        (v[31], v[32] / d, v[33]), (v[34], v[35] / d, v[36]), (v[37], v[38] / d, v[39]),
        (v[40], v[41] / d, v[42]), (v[43], v[44] / d, v[45]),
    )  # fmt: skip
    return _new_tick(
        (
            v[0], "full", last, v[2], v[3] / d, v[4], v[5], v[6],
            v[7] / d, v[8] / d, v[9] / d, close, _percent_change(last, close),
            v[11], v[12], v[13], v[14], v[15], (buy, sell),
        )
    )  # fmt: skip


def _percent_change(last: float, close: float) -> float:
    return (last - close) * 100 / close if close else 0.0


# --- a run of same-length packets at once (NumPy) ------------------------------------------

_UInt32s = npt.NDArray[np.uint32]
_Floats = npt.NDArray[np.float64]


def _words(message: bytes, start: int, count: int, stride: int, words: int) -> _UInt32s:
    """The first ``words`` uint32 fields of ``count`` packets ``stride`` bytes apart."""
    view = np.ndarray((count, words), ">u4", message, start, (stride, 4))
    return view.astype(np.uint32)


def _ltp_columns(message: bytes, start: int, count: int) -> list[Tick]:
    words = _words(message, start, count, LTP_PACKET.size + 2, 2)
    prices = words[:, 1] / _DIVISORS[words[:, 0] & 0xFF]
    absent = (repeat(None),) * len(_LTP_ABSENT)
    return list(map(_new_tick, zip(words[:, 0].tolist(), repeat("ltp"), prices.tolist(), *absent)))


def _index_columns(mode: TickMode, message: bytes, start: int, count: int) -> list[Tick]:
    full = mode == "full"
    stride = (INDEX_FULL_PACKET if full else INDEX_QUOTE_PACKET).size + 2
    words = _words(message, start, count, stride, 6)
    changes = np.ndarray((count,), ">i4", message, start + 24, (stride,))
    divisors = _DIVISORS[words[:, 0] & 0xFF]
    last, high, low, open_, close = (words[:, 1:] / divisors[:, None]).T.tolist()
    timestamps: Iterable[int | None] = repeat(None)
    if full:
        timestamps = np.ndarray((count,), ">u4", message, start + 28, (stride,)).tolist()
    none = repeat(None)
    return list(
        map(
            _new_tick,
            zip(
                words[:, 0].tolist(), repeat(mode), last, none, none, none, none, none,
                open_, high, low, close, (changes / divisors).tolist(),
                none, none, none, none, timestamps, none,
            ),
        )
    )  # fmt: skip


_QUOTE_PRICES: Final = [1, 3, 7, 8, 9, 10]  # last, average, open, high, low, close
_QUOTE_COUNTS: Final = [0, 2, 4, 5, 6]  # token, quantity, volume, total buy, total sell


def _quote_columns(mode: TickMode, message: bytes, start: int, count: int) -> list[Tick]:
    full = mode == "full"
    stride = (FULL_PACKET if full else QUOTE_PACKET).size + 2
    words = _words(message, start, count, stride, 16 if full else 11)
    divisors = _DIVISORS[words[:, 0] & 0xFF]
    prices = words[:, _QUOTE_PRICES] / divisors[:, None]
    changes = _percent_changes(prices[:, 0], prices[:, 5]).tolist()
    last, average, open_, high, low, close = prices.T.tolist()
    token, quantity, volume, buys, sells = words[:, _QUOTE_COUNTS].T.tolist()
    if full:
        trade_time, oi, oi_high, oi_low, timestamp = words[:, 11:16].T.tolist()
        depth: Iterable[Depth | None] = _depth_columns(
            message, start + DEPTH_OFFSET, count, stride, divisors
        )
    else:
        trade_time = oi = oi_high = oi_low = timestamp = depth = repeat(None)
    return list(
        map(
            _new_tick,
            zip(
                token, repeat(mode), last, quantity, average, volume, buys, sells,
                open_, high, low, close, changes,
                trade_time, oi, oi_high, oi_low, timestamp, depth,
            ),
        )
    )  # fmt: skip


def _percent_changes(last: _Floats, close: _Floats) -> _Floats:
    """``_percent_change`` over arrays, with the same operations in the same order."""
    changes = np.zeros_like(last)
    np.divide((last - close) * 100, close, out=changes, where=close != 0)
    return changes


def _depth_columns(
    message: bytes, start: int, count: int, stride: int, divisors: _Floats
) -> Iterator[Depth]:
    step = DEPTH_ENTRY_SIZE
    quantities = np.ndarray((count, 10), ">u4", message, start, (stride, step)).T.tolist()
    raw_prices = np.ndarray((count, 10), ">u4", message, start + 4, (stride, step))
    prices = (raw_prices / divisors[:, None]).T.tolist()
    orders = np.ndarray((count, 10), ">u2", message, start + 8, (stride, step)).T.tolist()
    levels = [zip(q, p, o, strict=True) for q, p, o in zip(quantities, prices, orders, strict=True)]
    return zip(zip(*levels[:5], strict=True), zip(*levels[5:], strict=True), strict=True)


class _Layout(NamedTuple):
    row: Callable[[bytes, int], Tick]
    columns: Callable[[bytes, int, int], list[Tick]]  # message, first packet's start, count


_LAYOUTS: Final = {
    LTP_PACKET.size: _Layout(_ltp_row, _ltp_columns),
    INDEX_QUOTE_PACKET.size: _Layout(
        partial(_index_row, INDEX_QUOTE_PACKET, "quote"), partial(_index_columns, "quote")
    ),
    INDEX_FULL_PACKET.size: _Layout(
        partial(_index_row, INDEX_FULL_PACKET, "full"), partial(_index_columns, "full")
    ),
    QUOTE_PACKET.size: _Layout(_quote_row, partial(_quote_columns, "quote")),
    FULL_PACKET.size: _Layout(_full_row, partial(_quote_columns, "full")),
}
