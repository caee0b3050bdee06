from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tickfleet.config.settings import Settings
from tickfleet.market.expiry import years_to_expiry
from tickfleet.market.options import (
    ChainSpec,
    MockOptionBook,
    MockOptionSnapshot,
    OptionContract,
    round_to_tick,
)
from tickfleet.market.smile import smile_iv
from tickfleet.market.snapshot import MockUnderlyingSnapshot

pytestmark = pytest.mark.timeout(30)

IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2025, 1, 6, 20, 0, tzinfo=IST)
TODAY = NOW.date()
SPOT = 24_000.0
EXPIRIES = (date(2025, 1, 7), date(2025, 1, 14), date(2025, 1, 30))


class RecordingMetrics:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], float] = {}

    def inc(self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None) -> None:
        key = (name, (labels or {}).get("reason", ""))
        self.counts[key] = self.counts.get(key, 0.0) + amount

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        raise AssertionError("not expected")

    def observe_many(
        self, name: str, values: Sequence[float], labels: Mapping[str, str] | None = None
    ) -> None:
        raise AssertionError("not expected")

    def set_gauge(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        raise AssertionError("not expected")


def chain(
    expiries: tuple[date, ...] = EXPIRIES, low: int = 21_000, high: int = 27_000, step: int = 100
) -> list[OptionContract]:
    contracts, token = [], 1
    for expiry in expiries:
        for strike in range(low, high + 1, step):
            for kind in ("CE", "PE"):
                symbol = f"NIFTY{expiry:%y%m%d}{strike}{kind}"
                contracts.append(OptionContract(token, symbol, kind, float(strike), expiry))
                token += 1
    return contracts


def underlying(price: float = SPOT, version: int = 1) -> MockUnderlyingSnapshot:
    return MockUnderlyingSnapshot(version, "NIFTY 50", price, price, price, price, price, 0, 0.0)


def ticked(book: MockOptionBook, price: float = SPOT, seed: int = 1) -> list[MockOptionSnapshot]:
    return book.tick(underlying(price), NOW, np.random.default_rng(seed))


def pairs(states: list[MockOptionSnapshot]) -> dict[tuple[date, float], dict[str, float]]:
    grouped: dict[tuple[date, float], dict[str, float]] = {}
    for s in states:
        grouped.setdefault((s.expiry, s.strike), {})[s.instrument_type] = s.last_price
    return grouped


def test_put_call_parity_holds_within_rounding() -> None:
    book = MockOptionBook(ChainSpec())
    book.ensure(chain())
    states = ticked(book)
    assert len(states) == len(chain())
    rate = ChainSpec().rate
    for (expiry, strike), prices in pairs(states).items():
        years = max(years_to_expiry(NOW, expiry, "Asia/Kolkata"), 60 / (365 * 86_400))
        parity = SPOT - strike * np.exp(-rate * years)
        gap = abs(prices["CE"] - prices["PE"] - parity)
        assert gap <= 2 * 0.05 + 1e-9, (expiry, strike, prices, parity)
        assert gap <= 0.005 * SPOT


def test_prices_are_exchange_ticks_and_greeks_have_the_right_signs() -> None:
    book = MockOptionBook(ChainSpec())
    book.ensure(chain())
    states = ticked(book)
    prices = np.array([s.last_price for s in states])
    assert np.all(prices >= 0.05)
    np.testing.assert_allclose(np.round(prices / 0.05), prices / 0.05, atol=1e-9)
    calls = [s for s in states if s.instrument_type == "CE"]
    puts = [s for s in states if s.instrument_type == "PE"]
    assert all(0 <= s.delta <= 1 for s in calls) and all(-1 <= s.delta <= 0 for s in puts)
    assert all(s.gamma >= 0 and s.vega >= 0 and s.theta <= 0 for s in calls)
    assert all(s.version == 1 and s.timestamp == NOW.timestamp() for s in states)


def test_states_carry_the_precision_ticks_publish() -> None:
    book = MockOptionBook(ChainSpec())
    book.ensure(chain())
    for s in ticked(book):
        assert s.last_price == round(s.last_price, 2)
        assert (s.iv, s.delta, s.gamma) == (round(s.iv, 6), round(s.delta, 6), round(s.gamma, 8))
        assert (s.theta, s.vega) == (round(s.theta, 4), round(s.vega, 4))


def test_iv_follows_the_smile_with_small_noise() -> None:
    spec = ChainSpec(iv_noise=0.002)
    book = MockOptionBook(spec)
    book.ensure(chain())
    states = ticked(book)
    strikes = np.array([s.strike for s in states])
    years = np.array([years_to_expiry(NOW, s.expiry, "Asia/Kolkata") for s in states])
    smile = smile_iv(spec.smile, strikes, SPOT, years)
    ivs = np.array([s.iv for s in states])
    assert np.all((ivs >= 0.05) & (ivs <= 1.5))
    relative = ivs / smile - 1
    assert np.max(np.abs(relative)) < 6 * 0.002
    assert np.std(relative) > 0.0005  # the noise is there


def test_prices_move_with_the_index() -> None:
    book = MockOptionBook(ChainSpec(iv_noise=0.0))
    book.ensure(chain())
    before = {s.instrument_token: s for s in ticked(book, SPOT)}
    after = ticked(book, SPOT * 1.01)
    for s in after:
        old = before[s.instrument_token].last_price
        if s.instrument_type == "CE":
            assert s.last_price >= old
        else:
            assert s.last_price <= old
    atm_call = next(s for s in after if s.strike == SPOT and s.instrument_type == "CE")
    assert atm_call.last_price > before[atm_call.instrument_token].last_price + 50


def test_volume_grows_and_open_interest_moves_in_lots() -> None:
    spec = ChainSpec(lot_size=65)
    book = MockOptionBook(spec)
    book.ensure(chain())
    history = [ticked(book, seed=seed) for seed in range(20)]
    volume = np.array([[s.volume for s in states] for states in history])
    oi = np.array([[s.oi for s in states] for states in history])
    assert np.all(np.diff(volume, axis=0) >= 0)
    assert volume[-1].sum() > volume[0].sum()
    assert np.all(volume % 65 == 0) and np.all(oi % 65 == 0) and np.all(oi >= 0)
    assert 0 < np.mean(oi[-1] != oi[0]) < 1
    assert np.all(np.abs(oi[-1] - oi[0]) <= 0.2 * oi[0] + 65 * 20)  # drifts slowly
    atm = [i for i, s in enumerate(history[0]) if s.strike == SPOT]
    far = [i for i, s in enumerate(history[0]) if abs(s.strike - SPOT) >= 2_500]
    assert volume[-1, atm].mean() > volume[-1, far].mean()
    assert [s.version for s in (states[0] for states in history)] == list(range(1, 21))


def test_day_volume_restarts_in_a_new_session() -> None:
    book = MockOptionBook(ChainSpec())
    book.ensure(chain())
    rng = np.random.default_rng(0)
    for i in range(10):
        book.tick(underlying(), NOW + timedelta(minutes=i), rng)
    late = {s.instrument_token: s.volume for s in book.snapshot()}
    next_day = book.tick(underlying(), NOW + timedelta(hours=5), rng)
    assert sum(s.volume for s in next_day) < sum(late.values()) / 3


def test_layout_is_rebuilt_only_when_the_contract_set_changes() -> None:
    book = MockOptionBook(ChainSpec())
    contracts = chain()
    book.ensure(contracts)
    for seed in range(5):
        ticked(book, seed=seed)
    assert book.rebuilds == 1
    book.ensure(contracts[:10])  # already held: recency only
    ticked(book)
    assert book.rebuilds == 1
    volume_before = {s.instrument_token: s.volume for s in book.snapshot()}
    extra = OptionContract(99_999, "NIFTY2513024000CE", "CE", 24_000.0, date(2025, 1, 13))
    book.ensure([extra])
    after = {s.instrument_token: s.volume for s in ticked(book)}
    assert book.rebuilds == 2
    assert all(after[t] >= v for t, v in volume_before.items())  # state carried over
    assert after[99_999] >= 0


def test_lru_cap_evicts_the_least_recently_used() -> None:
    metrics = RecordingMetrics()
    book = MockOptionBook(ChainSpec(), max_size=10, metrics=metrics)
    contracts = chain()[:14]
    assert book.ensure(contracts[:10]) == 0
    ticked(book)
    book.ensure([contracts[0]])  # refreshed: now the most recently used
    assert book.ensure(contracts[10:12]) == 2
    held = set(book.tokens)
    assert len(book) == 10
    assert contracts[0].instrument_token in held
    assert contracts[1].instrument_token not in held and contracts[2].instrument_token not in held
    assert metrics.counts == {("mock_evictions_total", "lru"): 2}
    snapshot_tokens = {s.instrument_token for s in book.snapshot()}
    assert snapshot_tokens <= held and contracts[1].instrument_token not in snapshot_tokens
    assert len(ticked(book)) == 10


def test_a_batch_larger_than_the_cap_keeps_its_newest() -> None:
    book = MockOptionBook(ChainSpec(), max_size=10)
    contracts = chain()[:15]
    assert book.ensure(contracts) == 5
    assert book.tokens == [c.instrument_token for c in contracts[5:]]


def test_cap_comes_from_settings() -> None:
    book = MockOptionBook.from_settings(Settings(mock_state_max_size=3))
    assert book.ensure(chain()[:5]) == 2 and len(book) == 3
    assert MockOptionBook.from_settings(Settings()).ensure(chain()) == 0


def test_contracts_expire_at_the_close_of_their_expiry_day(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = RecordingMetrics()
    book = MockOptionBook(ChainSpec(), metrics=metrics)
    yesterday, today, tomorrow = TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=1)
    contracts = chain(expiries=(yesterday, today, tomorrow), low=24_000, high=24_400)
    book.ensure(contracts)
    before_close = datetime.combine(TODAY, time(15, 29, 59), IST)
    with caplog.at_level(logging.INFO, logger="tickfleet.market.options"):
        assert book.evict_expired(before_close) == [c.instrument_token for c in contracts[:10]]
        assert book.evict_expired(before_close + timedelta(seconds=1)) == [
            c.instrument_token for c in contracts[10:20]
        ]
    assert len(book) == 10
    records = [r for r in caplog.records if r.name == "tickfleet.market.options"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.INFO, "Removed 10 expired mock states"),
        (logging.INFO, "Removed 10 expired mock states"),
    ]
    assert metrics.counts == {("mock_evictions_total", "expired"): 20}
    assert book.take_expired() == [c.instrument_token for c in contracts[:20]]
    assert book.take_expired() == []
    caplog.clear()
    assert book.evict_expired(before_close + timedelta(seconds=1)) == []
    assert not caplog.records


def test_a_tick_never_prices_a_contract_past_its_expiry_instant() -> None:
    book = MockOptionBook(ChainSpec())
    contracts = chain(expiries=(TODAY, TODAY + timedelta(days=7)), low=24_000, high=24_400)
    book.ensure(contracts)
    rng = np.random.default_rng(3)
    at_close = datetime.combine(TODAY, time(15, 30), IST)
    last_minute = book.tick(underlying(), at_close - timedelta(seconds=1), rng)
    assert {s.expiry for s in last_minute} == {TODAY, TODAY + timedelta(days=7)}
    assert all(np.isfinite([s.delta, s.gamma, s.theta, s.vega, s.iv]).all() for s in last_minute)
    after = book.tick(underlying(), at_close, rng)
    assert {s.expiry for s in after} == {TODAY + timedelta(days=7)}
    assert book.take_expired() == [c.instrument_token for c in contracts[:10]]


def test_forget_and_snapshot_by_token() -> None:
    metrics = RecordingMetrics()
    book = MockOptionBook(ChainSpec(), metrics=metrics)
    contracts = chain()[:6]
    book.ensure(contracts)
    ticked(book)
    assert book.forget([1, 2, 2, 12345]) == 2
    assert 1 not in book and 3 in book
    assert [s.instrument_token for s in book.snapshot([5, 1, 3, 777])] == [5, 3]
    assert len(ticked(book)) == 4
    assert metrics.counts == {}


def test_expiry_day_contracts_price_near_intrinsic() -> None:
    book = MockOptionBook(ChainSpec())
    book.ensure(chain(expiries=(TODAY,), low=23_000, high=25_000, step=500))
    after_close = datetime.combine(TODAY, datetime.min.time(), IST) + timedelta(hours=20)
    states = book.tick(underlying(), after_close, np.random.default_rng(0))
    for s in states:
        assert np.isfinite([s.iv, s.delta, s.gamma, s.theta, s.vega]).all()
        if s.strike == SPOT:
            assert 0.05 <= s.last_price < 5  # the one-minute floor of time left
            continue
        intrinsic = SPOT - s.strike if s.instrument_type == "CE" else s.strike - SPOT
        assert s.last_price == pytest.approx(max(intrinsic, 0.05), abs=0.1)


def test_empty_book_ticks_nothing() -> None:
    book = MockOptionBook(ChainSpec())
    assert ticked(book) == [] and book.snapshot() == [] and book.version == 0


def test_contract_validation() -> None:
    with pytest.raises(ValueError):
        OptionContract(1, "X", "FUT", 24_000.0, TODAY)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        OptionContract(1, "X", "CE", 0.0, TODAY)
    with pytest.raises(ValueError):
        MockOptionBook(ChainSpec(), max_size=0)


def test_round_to_tick() -> None:
    prices = np.array([0.0, 0.01, 0.024, 0.026, 0.074, 12.3449, 12.3751, 99.98])
    rounded = round_to_tick(prices, 0.05)
    np.testing.assert_array_equal(rounded, [0.05, 0.05, 0.05, 0.05, 0.05, 12.35, 12.4, 100.0])


def test_a_chain_ticks_columns_are_never_changed_after_they_are_handed_over() -> None:
    """The stream's bars keep a tick's columns without copying them (``ChainArrays``):
    later ticks, new contracts (fresh open interest) and a new session must not touch them."""
    contracts = chain(low=23_000, high=25_000, step=500)
    book = MockOptionBook(ChainSpec())
    book.ensure(contracts[:6])
    kept = []
    for k, (at, count) in enumerate(
        [(NOW, 6), (NOW, 6), (NOW, 10), (NOW + timedelta(hours=6), 10)]
    ):
        if count > len(book):
            book.ensure(contracts[:count])
        book.tick(underlying(SPOT + k), at, np.random.default_rng(k))
        handed = book.last_chain
        assert handed is not None and len(handed.tokens) == count
        kept.append((handed, [column.copy() for column in handed[2:]]))
    for handed, copies in kept:
        for column, copy in zip(handed[2:], copies, strict=True):
            assert np.array_equal(column, copy)
