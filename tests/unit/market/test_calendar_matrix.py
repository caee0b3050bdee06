"""Calendar-dependent behaviour at frozen instants: feed mode, admission, pricing, ticks.

Every expectation comes from the hand-written ``CALENDAR_MATRIX`` (is the market open,
which expiry days are over), never from the code under test. The eviction side of the
same matrix runs against SQL and Redis in ``tests/integration/maintenance``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest

from tests.support.instants import CALENDAR_MATRIX, Instant
from tests.support.ticks import check_option_tick
from tickfleet.accounts.config import Account
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument, OfflineUniverseSource, UniverseSpec
from tickfleet.market.hours import MarketHours
from tickfleet.market.options import ChainSpec, MockOptionBook, OptionContract
from tickfleet.market.snapshot import MockUnderlyingSnapshot
from tickfleet.stream.feeds.simulated.options import option_tick
from tickfleet.subscriptions.admission import admit
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.ticks.payloads import OptionPayload, Stamp

pytestmark = pytest.mark.timeout(60)

IST = ZoneInfo("Asia/Kolkata")
SETTINGS = Settings(mock_strikes_each_side=8, mock_weekly_expiries=3, mock_monthly_expiries=2)


@pytest.fixture(scope="module")
def hours() -> MarketHours:
    return MarketHours.from_settings(SETTINGS)


class ListedRegistry:
    """The registry's lookup over a list (admission is a pure function of it)."""

    def __init__(self, instruments: list[Instrument]) -> None:
        self._by_token = {i.instrument_token: i for i in instruments}

    def get_many(self, tokens: Collection[int]) -> Mapping[int, Instrument]:
        return {t: self._by_token[t] for t in tokens if t in self._by_token}

    def count(self) -> int:
        return len(self._by_token)


def listed_at(instant: Instant) -> list[Instrument]:
    """What the registry holds at ``instant``: this morning's refresh plus last week's."""
    source = OfflineUniverseSource(UniverseSpec.from_settings(SETTINGS))
    today = instant.at.date()
    both = source.fetch(today) + source.fetch(today - timedelta(days=7))
    options = {i.instrument_token: i for i in both if i.is_option}
    return sorted(options.values(), key=lambda i: i.instrument_token)


@pytest.mark.parametrize("instant", CALENDAR_MATRIX, ids=lambda i: i.name)
def test_feed_mode(instant: Instant, hours: MarketHours) -> None:
    assert hours.is_open(instant.at) is instant.market_open
    expected = "live" if instant.market_open else "mock"
    assert hours.feed_mode(instant.at, "auto", True, True) == expected
    assert hours.feed_mode(instant.at, "auto", False, True) == "mock"
    assert hours.feed_mode(instant.at, "auto", True, False) == (
        "live" if instant.market_open else "idle"
    )


@pytest.mark.parametrize("instant", CALENDAR_MATRIX, ids=lambda i: i.name)
def test_every_listed_expiry_is_a_trading_day(instant: Instant, hours: MarketHours) -> None:
    for instrument in listed_at(instant):
        assert instrument.expiry is not None
        assert hours.calendar.is_trading_day(instrument.expiry), instrument.tradingsymbol


@pytest.mark.parametrize("instant", CALENDAR_MATRIX, ids=lambda i: i.name)
def test_admission(instant: Instant, hours: MarketHours) -> None:
    listed = listed_at(instant)
    accounts = [Account("sim-1", None, None, 3)]
    rejected = {
        r.token: r
        for r in admit(
            [SubscriptionRequest(i.instrument_token) for i in listed],
            ListedRegistry(listed),
            accounts,
            hours,
            instant.at,
        )
    }
    for instrument in listed:
        assert instrument.expiry is not None
        if instrument.expiry <= instant.last_expired_day:
            rejection = rejected[instrument.instrument_token]
            assert rejection.kind == "expired"
            assert rejection.detail == f"contract expired at {instrument.expiry}T15:30:00+05:30"
        else:
            assert instrument.instrument_token not in rejected
    assert any(i.expiry is not None and i.expiry <= instant.last_expired_day for i in listed)
    assert len(rejected) < len(listed)


def contracts_of(instruments: list[Instrument]) -> list[OptionContract]:
    return [
        OptionContract(
            i.instrument_token,
            i.tradingsymbol,
            "CE" if i.instrument_type == "CE" else "PE",
            i.strike,
            i.expiry or date.max,
        )
        for i in instruments
    ]


@pytest.mark.parametrize("instant", CALENDAR_MATRIX, ids=lambda i: i.name)
def test_pricing_and_ticks(instant: Instant) -> None:
    listed = listed_at(instant)
    book = MockOptionBook(ChainSpec.from_settings(SETTINGS), max_size=10_000)
    book.ensure(contracts_of(listed))
    spot = SETTINGS.mock_underlying_price
    snapshot = MockUnderlyingSnapshot(1, "NIFTY 50", spot, spot, spot, spot, spot, 0, 0.0)
    states = book.tick(snapshot, instant.at, np.random.default_rng(7))
    live = {i.instrument_token for i in listed if i.expiry and i.expiry > instant.last_expired_day}
    assert {s.instrument_token for s in states} == live
    assert sorted(book.take_expired()) == sorted(
        i.instrument_token for i in listed if i.instrument_token not in live
    )
    rows = {i.instrument_token: i for i in listed}
    stamp = Stamp.of(instant.at.timestamp(), IST)
    for state in states:
        payload = OptionPayload(rows[state.instrument_token])
        tick = orjson.loads(option_tick(payload, stamp, state))
        expiry = datetime.combine(state.expiry, SETTINGS.market_close, IST)
        check_option_tick(tick, strict=expiry - instant.at >= timedelta(days=1))
