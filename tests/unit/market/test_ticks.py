from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from tickfleet.market.contracts import MockOptionSnapshot
from tickfleet.market.snapshot import MockUnderlyingSnapshot
from tickfleet.market.ticks import iso_timestamp, to_tick, underlying_tick

pytestmark = pytest.mark.timeout(10)

IST = ZoneInfo("Asia/Kolkata")
INSTANT = datetime(2025, 1, 6, 14, 29, 59, 250_000, tzinfo=UTC)  # 19:59:59.250 in Kolkata

OPTION_FIELDS = {
    "instrument_token", "tradingsymbol", "instrument_type", "strike", "expiry", "last_price",
    "volume", "oi", "iv", "delta", "gamma", "theta", "vega", "timestamp", "is_mock",
}  # fmt: skip
UNDERLYING_FIELDS = {"symbol", "open", "high", "low", "close", "volume", "ts", "is_mock"}


def option() -> MockOptionSnapshot:
    return MockOptionSnapshot(
        instrument_token=12_345_678,
        tradingsymbol="NIFTY2510724000CE",
        instrument_type="CE",
        strike=24_000.0,
        expiry=date(2025, 1, 7),
        last_price=102.35000000000001,
        volume=6_500,
        oi=1_300_000,
        iv=0.1312345678,
        delta=0.51234567891,
        gamma=0.000612345678,
        theta=-35.123456,
        vega=7.3456789,
        timestamp=INSTANT.timestamp(),
        version=42,
    )


def test_iso_timestamp_carries_the_market_offset() -> None:
    assert iso_timestamp(INSTANT.timestamp(), IST) == "2025-01-06T19:59:59.250+05:30"
    assert datetime.fromisoformat(iso_timestamp(INSTANT.timestamp(), IST)) == INSTANT


def test_option_tick_has_the_published_fields() -> None:
    tick = to_tick(option(), IST)
    assert set(tick) == OPTION_FIELDS
    assert tick["expiry"] == "2025-01-07"
    assert tick["timestamp"] == "2025-01-06T19:59:59.250+05:30"
    assert tick["is_mock"] is True
    assert tick["instrument_token"] == 12_345_678 and tick["instrument_type"] == "CE"
    # the book rounds; the tick copies its values unchanged
    assert (tick["last_price"], tick["iv"], tick["gamma"]) == (
        102.35000000000001,
        0.1312345678,
        0.000612345678,
    )


def test_underlying_tick_has_the_published_fields() -> None:
    snap = MockUnderlyingSnapshot(
        7, "NIFTY 50", 24_012.3456, 24_000.0, 24_020.004, 23_990.0, 23_950.5, 175_000,
        INSTANT.timestamp(),
    )  # fmt: skip
    tick = underlying_tick(snap, IST)
    assert set(tick) >= UNDERLYING_FIELDS
    assert tick["last_price"] == 24_012.35 and tick["high"] == 24_020.0
    assert tick["ts"] == "2025-01-06T19:59:59.250+05:30"
    assert tick["is_mock"] is True and tick["version"] == 7


def test_ticks_serialise_with_orjson() -> None:
    decoded = orjson.loads(orjson.dumps(to_tick(option(), IST)))
    assert decoded["strike"] == 24_000.0 and decoded["is_mock"] is True
