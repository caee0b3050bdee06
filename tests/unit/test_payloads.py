"""The payload builders: every field of both channels, its type and its meaning."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest
from redis.crc import key_slot

from tickfleet.instruments import Instrument
from tickfleet.ticks.channels import Channels
from tickfleet.ticks.payloads import (
    Depth,
    IndexQuote,
    OptionPayload,
    Stamp,
    index_tick,
    iso_timestamp,
)

pytestmark = pytest.mark.timeout(10)

IST = ZoneInfo("Asia/Kolkata")
INSTANT = datetime(2025, 1, 6, 14, 29, 59, 250_000, tzinfo=UTC)  # 19:59:59.250 in Kolkata
ROW = Instrument(
    instrument_token=12_345_678,
    exchange_token=48_225,
    tradingsymbol="NIFTY2510724000CE",
    name="NIFTY",
    underlying="NIFTY",
    last_price=0.0,
    expiry=date(2025, 1, 7),
    strike=24_000.0,
    tick_size=0.05,
    lot_size=75,
    instrument_type="CE",
    segment="NFO-OPT",
    exchange="NFO",
)
STAMP = Stamp.of(INSTANT.timestamp(), IST)
MOVES = (102.35, 6_500, 1_300_000, 0.131234, 0.512346, 0.00061235, -35.1235, 7.3457, 42, True)


def test_iso_timestamp_carries_the_market_offset() -> None:
    assert iso_timestamp(INSTANT.timestamp(), IST) == "2025-01-06T19:59:59.250+05:30"
    assert datetime.fromisoformat(iso_timestamp(INSTANT.timestamp(), IST)) == INSTANT


def test_an_option_tick_carries_the_predecessors_fields_and_ours() -> None:
    tick = orjson.loads(OptionPayload(ROW).tick(STAMP, *MOVES))
    assert tick == {
        # the predecessor's fields, with its names, types and meanings
        "token": 12_345_678,
        "symbol": "NIFTY",
        "type": "CE",
        "price": 102.35,
        "ts": 1_736_173_799,
        "segment": "NFO-OPT",
        "exchange": "NFO",
        "lot_size": 75,
        "tick_size": 0.05,
        "strike": 24_000.0,
        "expiry": "2025-01-07",
        "volume": 6_500,
        "oi": 1_300_000,
        "iv": 0.131234,
        "delta": 0.512346,
        "gamma": 0.00061235,
        "theta": -35.1235,
        "vega": 7.3457,
        "is_mock": True,
        "depth": None,
        "total_buy_quantity": None,
        "total_sell_quantity": None,
        # tickfleet's
        "instrument_token": 12_345_678,
        "tradingsymbol": "NIFTY2510724000CE",
        "instrument_type": "CE",
        "last_price": 102.35,
        "timestamp": "2025-01-06T19:59:59.250+05:30",
        "prev_close": None,
        "version": 42,
    }


def test_depth_has_the_predecessors_shape() -> None:
    levels = tuple((75 * (i + 1), 102.3 - 0.05 * i, i + 1) for i in range(5))
    depth: Depth = (levels, levels)
    tick = orjson.loads(OptionPayload(ROW).tick(STAMP, *MOVES, None, depth, 9_000, 8_000))
    assert tick["depth"]["buy"][0] == {"quantity": 75, "price": 102.3, "orders": 1}
    assert len(tick["depth"]["sell"]) == 5
    assert (tick["total_buy_quantity"], tick["total_sell_quantity"]) == (9_000, 8_000)


def test_an_index_tick_closes_at_the_current_price() -> None:
    quote = IndexQuote(24_012.3456, 24_000.0, 24_020.004, 23_990.0, 23_950.5, 175_000, 7, True)
    tick = orjson.loads(index_tick("NIFTY", "NIFTY 50", 256_265, quote, STAMP))
    assert tick == {
        "symbol": "NIFTY",
        "close": 24_012.35,
        "price": 24_012.35,
        "open": 24_000.0,
        "high": 24_020.0,
        "low": 23_990.0,
        "volume": 175_000,
        "ts": 1_736_173_799,
        "is_mock": True,
        "token": 256_265,
        "instrument_token": 256_265,
        "tradingsymbol": "NIFTY 50",
        "last_price": 24_012.35,
        "prev_close": 23_950.5,
        "change": 61.85,
        "timestamp": "2025-01-06T19:59:59.250+05:30",
        "version": 7,
    }


def test_each_underlying_has_its_channels_and_a_cluster_keeps_them_in_one_slot() -> None:
    nifty = Channels.for_underlying("ticker", "NIFTY")
    assert (nifty.options, nifty.underlying, nifty.latest_options) == (
        "ticker:nifty:options",
        "ticker:nifty:underlying",
        "ticker:nifty:latest:options",
    )
    sharded = Channels.for_underlying("ticker", "BANKNIFTY", sharded=True)
    assert sharded.options == "ticker:{banknifty}:options"
    names = [sharded.options, sharded.underlying, sharded.events, sharded.latest_options]
    assert len({key_slot(n.encode()) for n in [*names, sharded.latest_underlying]}) == 1
