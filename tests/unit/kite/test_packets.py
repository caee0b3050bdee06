"""The binary tick parser against Zerodha's reference packets and the official client's parser.

Packets are built here with their own struct formats, not the library's, so the
official ``KiteTicker._parse_binary`` (run on the same bytes, no socket opened) is an
independent oracle. Frames of 1 to 60 packets exercise both decoding paths (struct for
short runs, NumPy from ``COLUMNAR_MIN`` on).
"""

from __future__ import annotations

import base64
import json
import struct
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kiteconnect import KiteTicker

from tickfleet.kite import (
    ParsedFrame,
    Tick,
    TickMode,
    encode_frame,
    frame,
    is_heartbeat,
    parse_frame,
    price_divisor,
)
from tickfleet.kite.packets import COLUMNAR_MIN
from tickfleet.kite.tokens import SEGMENT_IDS

DATA = Path(__file__).resolve().parents[2] / "data" / "kite"
INDICES = SEGMENT_IDS["INDICES"]
NCO = 12  # priced like BCD by the official client; not in SEGMENT_IDS
SEGMENTS = sorted({*SEGMENT_IDS.values(), NCO, 0, 200})
KNOWN_LENGTHS = {8, 28, 32, 44, 184}
KINDS = ("ltp", "index quote", "index full", "quote", "full")

U32 = st.integers(0, 2**32 - 1)
I32 = st.integers(-(2**31), 2**31 - 1)
U16 = st.integers(0, 2**16 - 1)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def official_ticker() -> Any:
    """The official client; constructing it opens no connection."""
    return KiteTicker("api_key", "access_token")


def official_parse(data: bytes) -> list[dict[str, Any]]:
    return official_ticker()._parse_binary(data)  # type: ignore[no-any-return]


# --- packets built by hand -------------------------------------------------------------------


def token(exchange_token: int, segment: int) -> int:
    return exchange_token << 8 | segment


def depth_bytes(entries: list[tuple[int, int, int]]) -> bytes:
    return b"".join(struct.pack(">IIH2x", q, p, o) for q, p, o in entries)


@st.composite
def raw_packets(draw: st.DrawFn, kind: str, segment: int | None = None) -> bytes:
    """One packet of ``kind`` with arbitrary field values, for a token of ``segment``."""
    seg = draw(st.sampled_from(SEGMENTS) | st.integers(0, 255)) if segment is None else segment
    tok = token(draw(st.integers(0, 2**24 - 1)), seg)
    if kind == "ltp":
        return struct.pack(">II", tok, draw(U32))
    if kind.startswith("index"):
        head = struct.pack(">6Ii", tok, *draw(st.tuples(*[U32] * 5)), draw(I32))
        return head + (struct.pack(">I", draw(U32)) if kind == "index full" else b"")
    quote = struct.pack(">11I", tok, *draw(st.tuples(*[U32] * 10)))
    if kind == "quote":
        return quote
    full = struct.pack(">5I", *draw(st.tuples(*[U32] * 5)))
    entries = draw(st.lists(st.tuples(U32, U32, U16), min_size=10, max_size=10))
    return quote + full + depth_bytes(entries)


ANY_PACKET = st.sampled_from(KINDS).flatmap(raw_packets)


# --- comparing with the official client ------------------------------------------------------


def when(epoch: int | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch)


def ours(tick: Tick) -> dict[str, Any]:
    """Our tick in the official client's terms (timestamps as its local datetimes)."""
    view = tick._asdict()
    view["last_trade_time"] = when(tick.last_trade_time)
    view["exchange_timestamp"] = when(tick.exchange_timestamp)
    return view


def theirs(tick: dict[str, Any]) -> dict[str, Any]:
    """The official client's dict in our field names."""
    ohlc = tick.get("ohlc", {})
    depth = tick.get("depth")
    fields = [f for f in Tick._fields if f not in ("open", "high", "low", "close", "depth")]
    view = {field: tick.get(field) for field in fields}
    view |= {field: ohlc.get(field) for field in ("open", "high", "low", "close")}
    view["depth"] = depth and tuple(
        tuple((e["quantity"], e["price"], e["orders"]) for e in depth[side])
        for side in ("buy", "sell")
    )
    return view


def carried_change(packet: bytes) -> float:
    """The change an index packet carries; the official client ignores it (see below)."""
    (tok,) = struct.unpack_from(">I", packet)
    (change,) = struct.unpack_from(">i", packet, 24)
    return float(change / price_divisor(tok))


def assert_same_as_official(packets: list[bytes], parsed: ParsedFrame) -> None:
    known = [p for p in packets if len(p) in KNOWN_LENGTHS]
    reference = official_parse(frame(packets))
    assert len(parsed.ticks) == len(reference) == len(known)
    assert parsed.malformed == len(packets) - len(known)
    for packet, tick, expected in zip(known, parsed.ticks, reference, strict=True):
        mine, wanted = ours(tick), theirs(expected)
        if len(packet) in (28, 32):
            # The official client overwrites the index packet's own change with a
            # percentage of close, as for quotes; we keep what the packet says.
            assert mine.pop("change") == carried_change(packet)
            wanted.pop("change")
        assert mine == wanted


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("segment", SEGMENTS)
def test_every_kind_and_segment_matches_the_official_parser(kind: str, segment: int) -> None:
    entries = [(100 + i, 123_456_789 + 5 * i, 3 + i) for i in range(10)]
    tok = token(1234, segment)
    fields = {
        "ltp": struct.pack(">II", tok, 1_234_567),
        "index quote": struct.pack(
            ">6Ii", tok, 2_400_050, 2_410_000, 2_390_000, 2_395_000, 2_399_000, -1_050
        ),
        "index full": struct.pack(
            ">6IiI", tok, 2_400_050, 2_410_000, 2_390_000, 2_395_000, 2_399_000, 1_050,
            1_700_000_000,
        ),
        "quote": struct.pack(
            ">11I", tok, 15_737, 7, 15_703, 1_192_471, 256_443, 363_009,
            15_691, 15_750, 15_610, 15_678,
        ),
    }  # fmt: skip
    fields["full"] = (
        fields["quote"] + struct.pack(">5I", 1_625_461_887, 10, 20, 5, 1_625_461_888)
    ) + depth_bytes(entries)
    packet = fields[kind]
    for count in (1, COLUMNAR_MIN + 1):  # both decoding paths
        assert_same_as_official([packet] * count, parse_frame(frame([packet] * count)))


@pytest.mark.timeout(60)
@SETTINGS
@given(st.lists(ANY_PACKET, max_size=30))
def test_mixed_frames_match_the_official_parser(packets: list[bytes]) -> None:
    assert_same_as_official(packets, parse_frame(frame(packets)))


@pytest.mark.timeout(60)
@SETTINGS
@given(
    st.sampled_from(KINDS).flatmap(
        lambda kind: st.lists(raw_packets(kind), min_size=COLUMNAR_MIN, max_size=60)
    )
)
def test_long_runs_match_the_official_parser(packets: list[bytes]) -> None:
    assert_same_as_official(packets, parse_frame(frame(packets)))


UNKNOWN = st.binary(max_size=60).filter(lambda p: len(p) not in KNOWN_LENGTHS)


@pytest.mark.timeout(60)
@SETTINGS
@given(st.lists(UNKNOWN.filter(lambda p: len(p) >= 4) | ANY_PACKET, max_size=8))
def test_packets_of_unknown_length_are_skipped_and_counted(packets: list[bytes]) -> None:
    assert_same_as_official(packets, parse_frame(frame(packets)))


@pytest.mark.parametrize("size", [0, 1, 3])
def test_packets_too_short_for_a_token_are_counted(size: int) -> None:
    # The official client raises struct.error on these: it reads the token first.
    good = struct.pack(">II", token(5, 2), 1234)
    parsed = parse_frame(frame([good, bytes(size), good]))
    assert parsed == ParsedFrame([Tick(token(5, 2), "ltp", 12.34)] * 2, 1)


# --- Zerodha's reference packets ------------------------------------------------------------


def reference(name: str) -> tuple[bytes, dict[str, Any]]:
    packet = base64.b64decode((DATA / f"ticker_{name}.packet").read_text())
    return packet, json.loads((DATA / f"ticker_{name}.json").read_text())


OLDER_NAMES = {
    "last_quantity": "last_traded_quantity",
    "average_price": "average_traded_price",
    "volume": "volume_traded",
    "buy_quantity": "total_buy_quantity",
    "sell_quantity": "total_sell_quantity",
    "timestamp": "exchange_timestamp",
}


@pytest.mark.parametrize("name", ["quote", "full"])
def test_reference_packets_decode_to_the_published_values(name: str) -> None:
    packet, published = reference(name)
    parsed = parse_frame(frame([packet]))
    assert parsed.malformed == 0
    (tick,) = parsed.ticks
    expected = {OLDER_NAMES.get(k, k): v for k, v in published.items()}
    assert tick.mode == expected["mode"] == name
    assert tick.instrument_token == expected["instrument_token"] == 408065
    for field in ("last_price", "last_traded_quantity", "average_traded_price", "volume_traded"):
        assert getattr(tick, field) == expected[field], field
    assert tick.total_buy_quantity == expected["total_buy_quantity"]
    assert tick.total_sell_quantity == expected["total_sell_quantity"]
    assert (tick.open, tick.high, tick.low, tick.close) == tuple(
        expected["ohlc"][k] for k in ("open", "high", "low", "close")
    )
    # The client now computes a percentage; the mocks published an absolute change, and
    # the quote mock repeats the full mock's 5.9 (1573.7 - 1567.8), not its own 5.35.
    assert tick.close is not None
    assert tick.change == pytest.approx((tick.last_price - tick.close) * 100 / tick.close)
    assert expected["change"] == pytest.approx(1573.7 - 1567.8)
    if name == "full":
        assert expected["change"] == pytest.approx(tick.last_price - tick.close)
        for field in ("last_trade_time", "exchange_timestamp"):
            assert tick._asdict()[field] == datetime.fromisoformat(expected[field]).timestamp()
        assert (tick.oi, tick.oi_day_high, tick.oi_day_low) == (0, 0, 0)
        assert tick.depth == tuple(
            tuple((e["quantity"], e["price"], e["orders"]) for e in expected["depth"][side])
            for side in ("buy", "sell")
        )
    else:
        assert tick.depth is None and tick.exchange_timestamp is None and tick.oi is None


# --- encode -> parse --------------------------------------------------------------------------


@st.composite
def ticks(draw: st.DrawFn, kind: str) -> Tick:
    """A tick whose prices are exact wire values for its segment, as the parser makes them."""
    if kind.startswith("index"):
        segment = INDICES
    else:
        segment = draw(st.sampled_from([s for s in SEGMENTS if s != INDICES]))
    tok = token(draw(st.integers(0, 2**24 - 1)), segment)
    divisor = price_divisor(tok)

    def price() -> float:
        return draw(U32) / divisor

    last = price()
    if kind == "ltp":
        return Tick(tok, "ltp", last)
    mode: TickMode = "full" if kind.endswith("full") else "quote"
    open_, high, low, close = price(), price(), price(), price()
    if kind.startswith("index"):
        stamp = draw(U32) if mode == "full" else None
        return Tick(
            tok, mode, last, open=open_, high=high, low=low, close=close,
            change=draw(I32) / divisor, exchange_timestamp=stamp,
        )  # fmt: skip
    quote = Tick(
        tok, mode, last, draw(U32), price(), draw(U32), draw(U32), draw(U32),
        open_, high, low, close, (last - close) * 100 / close if close else 0.0,
    )  # fmt: skip
    if mode == "quote":
        return quote
    levels = [(draw(U32), price(), draw(U16)) for _ in range(10)]
    depth = (tuple(levels[:5]), tuple(levels[5:]))
    extra = draw(st.tuples(*[U32] * 5))
    return quote._replace(
        last_trade_time=extra[0], oi=extra[1], oi_day_high=extra[2], oi_day_low=extra[3],
        exchange_timestamp=extra[4], depth=depth,
    )  # fmt: skip


ANY_TICK = st.sampled_from(KINDS).flatmap(ticks)


@pytest.mark.timeout(60)
@SETTINGS
@given(st.lists(ANY_TICK, max_size=30))
def test_mixed_frames_round_trip(original: list[Tick]) -> None:
    assert parse_frame(encode_frame(original)) == ParsedFrame(original, 0)


@pytest.mark.timeout(60)
@SETTINGS
@given(
    st.sampled_from(KINDS).flatmap(
        lambda kind: st.lists(ticks(kind), min_size=COLUMNAR_MIN, max_size=60)
    )
)
def test_long_runs_round_trip(original: list[Tick]) -> None:
    assert parse_frame(encode_frame(original)) == ParsedFrame(original, 0)


def test_runs_keep_frame_order_across_kinds() -> None:
    index = Tick(
        token(1, INDICES), "quote", 1.0, open=1.0, high=1.0, low=1.0, close=1.0, change=0.0
    )
    runs = [Tick(token(i, 2), "ltp", i / 100) for i in range(COLUMNAR_MIN)]
    original = [*runs, index, *runs[:3], index]
    assert parse_frame(encode_frame(original)).ticks == original


def test_ticks_are_immutable() -> None:
    tick = Tick(token(1, 2), "ltp", 1.0)
    with pytest.raises(AttributeError):
        tick.last_price = 2.0  # type: ignore[misc]


# --- malformed input ----------------------------------------------------------------------


def sample_frame() -> tuple[bytes, list[Tick], list[int]]:
    """A frame of mixed kinds, its ticks, and where each of its packets ends."""
    original = [
        Tick(token(7, 2), "ltp", 101.5),
        Tick(token(3, INDICES), "full", 24_000.5, open=1.0, high=2.0, low=0.5, close=3.0,
             change=-1.25, exchange_timestamp=1_700_000_000),
        Tick(token(9, 2), "quote", 10.0, 1, 10.0, 2, 3, 4, 9.0, 11.0, 8.0, 9.5, 100 * 0.5 / 9.5),
    ]  # fmt: skip
    data = encode_frame(original)
    ends, pos = [], 2
    for _ in original:
        pos += 2 + int.from_bytes(data[pos : pos + 2], "big")
        ends.append(pos)
    return data, original, ends


@pytest.mark.parametrize("cut", range(len(sample_frame()[0])))
def test_truncated_frames_keep_whole_packets_and_count_the_break(cut: int) -> None:
    data, original, ends = sample_frame()
    parsed = parse_frame(data[:cut])
    if cut == 1:  # one byte is a heartbeat
        assert parsed == ParsedFrame([], 0)
        return
    whole = sum(end <= cut for end in ends)
    assert parsed == ParsedFrame(original[:whole], 1)


def test_trailing_bytes_are_counted_and_the_ticks_kept() -> None:
    data, original, _ = sample_frame()
    assert parse_frame(data + b"\x00") == ParsedFrame(original, 1)


@pytest.mark.parametrize("bad_length", [0xFFFF, 10, 44 + 1])
def test_a_wrong_length_in_a_long_run_breaks_only_what_it_must(bad_length: int) -> None:
    original = [Tick(token(i, 2), "ltp", i / 100) for i in range(COLUMNAR_MIN * 2)]
    data = bytearray(encode_frame(original))
    at = 2 + 10 * (2 + 8)  # the 11th packet's length prefix
    data[at : at + 2] = bad_length.to_bytes(2, "big")
    parsed = parse_frame(bytes(data))
    assert parsed.ticks[:10] == original[:10]
    assert parsed.malformed >= 1
    assert all(isinstance(t, Tick) for t in parsed.ticks)


def test_a_heartbeat_is_no_tick_and_nothing_malformed() -> None:
    assert is_heartbeat(b"\x00")
    assert parse_frame(b"\x00") == ParsedFrame([], 0)
    assert parse_frame(b"") == ParsedFrame([], 1)
    assert parse_frame(b"\x00\x00") == ParsedFrame([], 0)
    assert not is_heartbeat(b"\x00\x00")


@pytest.mark.timeout(60)
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_garbage_never_raises(data: bytes) -> None:
    parsed = parse_frame(data)
    assert parsed.malformed >= 0
    assert all(isinstance(t, Tick) for t in parsed.ticks)
    # Nothing decoded and nothing counted: only a heartbeat or an empty frame.
    assert parsed.ticks or parsed.malformed or len(data) == 1 or data == b"\x00\x00"


@pytest.mark.timeout(60)
@SETTINGS
@given(
    st.lists(ANY_TICK, min_size=1, max_size=COLUMNAR_MIN + 5),
    st.data(),
)
def test_corrupted_frames_never_raise(original: list[Tick], data: st.DataObject) -> None:
    encoded = bytearray(encode_frame(original))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(encoded) - 1))
        encoded[at] = data.draw(st.integers(0, 255))
    parsed = parse_frame(bytes(encoded))
    assert all(isinstance(t, Tick) for t in parsed.ticks)
    assert parsed.malformed >= 0
