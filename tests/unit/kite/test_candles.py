"""Intervals and Kite's per-request limits, ranges, and candles read from Kite's shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from kiteconnect import KiteConnect

from tests.unit.history.samples import MINUTE_ROWS, OI_ROWS, kite_answer
from tickfleet.kite.candles import (
    KITE_TIMEZONE,
    Candle,
    CandleError,
    CandleQuery,
    Interval,
    RangeError,
    RangeTooLargeError,
)

pytestmark = pytest.mark.timeout(10)

IST = ZoneInfo("Asia/Kolkata")
NOON = datetime(2026, 6, 10, 12, 0, tzinfo=IST)

# Zerodha's caps per request, in days, written down by hand from its answer on the Kite
# Connect forum (not read from the code under test).
DOCUMENTED_MAX_DAYS = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}


def test_the_intervals_are_kites_with_its_limits_and_bar_lengths() -> None:
    assert {i.value: i.max_days for i in Interval} == DOCUMENTED_MAX_DAYS
    assert [i.bar for i in Interval] == [
        timedelta(minutes=m) for m in (1, 3, 5, 10, 15, 30, 60, 24 * 60)
    ]
    assert Interval("3minute") is Interval.MINUTE_3
    with pytest.raises(ValueError):
        Interval("week")


@pytest.mark.parametrize("interval", list(Interval))
def test_a_range_up_to_the_limit_is_asked_and_a_second_more_is_refused(
    interval: Interval,
) -> None:
    limit = timedelta(days=DOCUMENTED_MAX_DAYS[interval.value])
    CandleQuery(256265, NOON - limit, NOON, interval).check()
    over = CandleQuery(256265, NOON - limit - timedelta(seconds=1), NOON, interval)
    with pytest.raises(RangeTooLargeError) as refused:
        over.check()
    assert refused.value.limit_days == DOCUMENTED_MAX_DAYS[interval.value]
    assert f"at most {DOCUMENTED_MAX_DAYS[interval.value]} days per request" in str(refused.value)


def test_a_range_must_be_zoned_and_in_order() -> None:
    with pytest.raises(RangeError, match="zoned"):
        CandleQuery(1, datetime(2026, 6, 10, 9, 15), NOON, Interval.MINUTE).check()
    with pytest.raises(RangeError, match="before it starts"):
        CandleQuery(1, NOON, NOON - timedelta(minutes=1), Interval.MINUTE).check()
    CandleQuery(1, NOON, NOON, Interval.MINUTE).check()  # one candle's range


def test_a_range_is_closed_once_its_last_candle_has_ended() -> None:
    query = CandleQuery(1, NOON - timedelta(hours=1), NOON, Interval.MINUTE_5)
    last_bar_ends = (NOON + timedelta(minutes=5)).timestamp()
    assert not query.closed(NOON.timestamp())
    assert not query.closed(last_bar_ends - 0.001)
    assert query.closed(last_bar_ends)
    daily = CandleQuery(1, NOON - timedelta(days=5), NOON, Interval.DAY)
    assert not daily.closed(last_bar_ends)
    assert daily.closed((NOON + timedelta(days=1)).timestamp())


def test_candles_from_what_the_official_client_makes_of_kites_answer() -> None:
    kite = KiteConnect("key")
    try:
        plain = kite._format_historical(kite_answer("historical_minute")["data"])
        with_oi = kite._format_historical(kite_answer("historical_oi")["data"])
    finally:
        kite.reqsession.close()
    candles = [Candle.from_kite(record, IST) for record in plain]
    assert candles[0] == Candle(
        datetime(2017, 12, 15, 9, 15, tzinfo=IST), 1704.5, 1705.0, 1699.25, 1702.8, 2499
    )
    assert candles[0].date.tzinfo is IST
    assert [c.volume for c in candles] == [2499, 1271, 831, 771, 543, 802]
    oi = [Candle.from_kite(record, IST) for record in with_oi]
    assert [c.oi for c in oi] == [13667775, 13667775, 13758000, 13758000, 13758000, 13777050]
    third = datetime(2019, 12, 4, 9, 17, tzinfo=IST)
    assert oi[2] == Candle(third, 12001.0, 12001.0, 11995.1, 11998.55, 48450, 13758000)


def test_candles_from_kites_rows_and_back() -> None:
    utc = ZoneInfo("Etc/UTC")
    for rows in (MINUTE_ROWS, OI_ROWS):
        candles = [Candle.from_row(row, KITE_TIMEZONE) for row in rows]
        assert [c.to_row()[1:] for c in candles] == [row[1:] for row in rows]
        assert [Candle.from_row(c.to_row(), KITE_TIMEZONE) for c in candles] == candles
        moved = [Candle.from_row(row, utc) for row in rows]
        assert [m.date for m in moved] == [c.date for c in candles]  # the same instants
        assert moved[0].date.utcoffset() == timedelta(0)
    assert Candle.from_row(MINUTE_ROWS[0], KITE_TIMEZONE).date == datetime(
        2017, 12, 15, 3, 45, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "row",
    [
        ["2017-12-15T09:15:00+0530", 1, 2, 0.5, 1.5],  # too short
        ["2017-12-15T09:15:00+0530", "1", 2, 0.5, 1.5, 10],  # a price as text
        ["2017-12-15T09:15:00+0530", 1, 2, 0.5, 1.5, 10.5],  # a fractional volume
        ["2017-12-15T09:15:00+0530", 1, 2, 0.5, 1.5, True],  # a boolean volume
        ["2017-12-15T09:15:00", 1, 2, 0.5, 1.5, 10],  # no offset
        ["15/12/2017 09:15", 1, 2, 0.5, 1.5, 10],  # not ISO 8601
        [20171215, 1, 2, 0.5, 1.5, 10],
    ],
)
def test_an_unreadable_candle_is_refused(row: list[object]) -> None:
    with pytest.raises(CandleError):
        Candle.from_row(row, KITE_TIMEZONE)
