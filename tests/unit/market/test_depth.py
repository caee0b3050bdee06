"""The simulated books: every full-mode tick a coherent five-level book in the live path's
shape, spreads wider away from the money and near expiry, quantities in whole lots, totals
the sums; quote-mode ticks the totals only, LTP neither; deterministic from the RNG."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.depth import check_depth
from tickfleet.instruments import Instrument
from tickfleet.market.depth import LEVELS, ChainDepth, DepthSpec
from tickfleet.market.options import ChainSpec, MockOptionBook, OptionContract
from tickfleet.market.snapshot import MockUnderlyingSnapshot
from tickfleet.stream.feeds.simulated.depth_json import BookWriter, ModeFields
from tickfleet.stream.feeds.simulated.options import option_tick
from tickfleet.ticks.payloads import Depth, OptionPayload, Stamp

pytestmark = pytest.mark.timeout(60)

IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2025, 1, 6, 20, 0, tzinfo=IST)
SPOT = 24_000.0
NEAR, FAR = date(2025, 1, 7), date(2025, 3, 6)  # a day and 59 days from NOW
LOTS = {NEAR: 65, FAR: 75}  # the near contracts trade in lots of 65, the far in 75


def _contracts() -> list[OptionContract]:
    out, token = [], 1
    for expiry in (NEAR, FAR):
        for strike in range(21_000, 27_001, 250):
            for kind in ("CE", "PE"):
                symbol = f"NIFTY{expiry:%y%m%d}{strike}{kind}"
                out.append(OptionContract(token, symbol, kind, float(strike), expiry, LOTS[expiry]))
                token += 1
    return out


def _row(c: OptionContract) -> Instrument:
    return Instrument(
        c.instrument_token, c.instrument_token, c.tradingsymbol, "NIFTY", "NIFTY", 0.0,
        c.expiry, c.strike, 0.05, c.lot_size or 0, c.instrument_type, "NFO-OPT", "NFO",
    )  # fmt: skip


CONTRACTS = _contracts()
PAYLOADS = {c.instrument_token: OptionPayload(_row(c)) for c in CONTRACTS}


def _index(price: float, k: int) -> MockUnderlyingSnapshot:
    return MockUnderlyingSnapshot(k, "NIFTY 50", price, SPOT, SPOT, SPOT, SPOT, 0, 0.0)


def _published(
    seed: int, ticks: int, drift: float = 0.0, modes: dict[int, str] | None = None
) -> list[list[dict[str, Any]]]:
    """Every tick of ``ticks`` chain ticks as a consumer parses it, the index walking."""
    book = MockOptionBook(ChainSpec(), max_size=len(CONTRACTS))
    book.ensure(CONTRACTS)
    fields, rng, price, out = ModeFields(), np.random.default_rng(seed), SPOT, []
    walk = np.random.default_rng(seed + 1)
    for k in range(ticks):
        price *= 1.0 + drift + 0.001 * float(walk.standard_normal())
        states = book.tick(_index(price, k + 1), NOW + timedelta(seconds=k), rng, depth=True)
        chain, depth = book.last_chain, book.last_depth
        assert chain is not None and depth is not None
        wanted = [(modes or {}).get(t, "FULL") for t in chain.tokens]
        stamp = Stamp.of(states[0].timestamp, IST)
        out.append(
            [
                orjson.loads(option_tick(PAYLOADS[s.instrument_token], stamp, s, b, bid, ask))
                for s, b, bid, ask in zip(states, *fields.columns(depth, wanted), strict=True)
            ]
        )
    return out


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), drift=st.floats(-0.002, 0.002))
def test_every_full_tick_carries_a_coherent_book(seed: int, drift: float) -> None:
    chain_ticks = _published(seed, 12, drift)  # past two refreshes of the books' shapes
    bidless = 0
    for ticks in chain_ticks:
        for tick in ticks:
            if check_depth(tick) is None:
                bidless += 1  # a contract priced at a tick or two has no bid below it
    assert bidless < len(chain_ticks) * len(CONTRACTS) // 2


def _spreads(ticks: list[dict[str, Any]]) -> dict[tuple[str, float, str], float | None]:
    return {(t["expiry"], t["strike"], t["instrument_type"]): check_depth(t) for t in ticks}


def test_spreads_are_wider_away_from_the_money_and_near_expiry() -> None:
    for ticks in _published(7, 15):
        spread = _spreads(ticks)
        far_atm, far_otm = (
            spread[(FAR.isoformat(), 24_000.0, "CE")],
            spread[(FAR.isoformat(), 26_000.0, "CE")],
        )
        near_atm = spread[(NEAR.isoformat(), 24_000.0, "CE")]
        far_itm = spread[(FAR.isoformat(), 26_000.0, "PE")]
        assert far_atm is not None and far_otm is not None and near_atm is not None
        assert far_itm is not None
        assert far_otm > far_atm and far_itm > far_atm  # 8 % either side of the money
        assert near_atm > far_atm  # a day to expiry against 59


@given(
    money=st.lists(st.floats(0, 30), min_size=2, max_size=2),
    days=st.lists(st.floats(0, 400), min_size=2, max_size=2),
)
def test_gaps_never_narrow_away_from_the_money_nor_as_expiry_nears(
    money: list[float], days: list[float]
) -> None:
    spec = DepthSpec()
    m, d = np.array(sorted(money)), np.array(sorted(days))
    by_money = spec.gaps(m, np.array([d[0], d[0]]))
    by_days = spec.gaps(np.array([m[0], m[0]]), d)
    assert by_money[0] <= by_money[1] and by_days[0] >= by_days[1]
    assert min(*by_money, *by_days) >= spec.min_gap


def test_quote_ticks_carry_the_totals_and_ltp_ticks_neither_and_no_depth() -> None:
    near_money = [c for c in CONTRACTS if c.expiry == FAR and abs(c.strike - SPOT) <= 250]
    tokens = [c.instrument_token for c in near_money]
    modes = dict(zip(tokens, ["QUOTE", "LTP", "FULL", "QUOTE", "LTP", "FULL"], strict=True))
    for ticks in _published(3, 3, modes=modes):
        for tick in ticks:
            mode = modes.get(tick["instrument_token"], "FULL")
            if mode == "FULL":
                check_depth(tick)
                continue
            assert tick["depth"] is None
            if mode == "LTP":
                assert tick["total_buy_quantity"] is None is tick["total_sell_quantity"]
            else:  # the sums of a book that has bids and offers near the money
                assert tick["total_buy_quantity"] > 0 and tick["total_sell_quantity"] > 0
                assert tick["total_buy_quantity"] % tick["lot_size"] == 0


def test_the_books_are_made_from_the_books_generator_alone() -> None:
    one, two, other = _published(11, 6), _published(11, 6), _published(12, 6)
    assert one == two
    assert [t["depth"] for t in one[-1]] != [t["depth"] for t in other[-1]]


def test_without_depth_asked_the_book_makes_none() -> None:
    book = MockOptionBook(ChainSpec(), max_size=len(CONTRACTS))
    book.ensure(CONTRACTS)
    book.tick(_index(SPOT, 1), NOW, np.random.default_rng(1), depth=True)
    assert book.last_depth is not None
    book.tick(_index(SPOT, 2), NOW, np.random.default_rng(1))
    assert book.last_depth is None


def _live_book(depth: ChainDepth, row: int) -> dict[str, Any]:
    """What the live path publishes for the same levels: ``OptionPayload.tick`` given a
    ``Depth`` and the totals, its depth and totals members."""
    prices = depth.prices()[:, row].tolist()
    levels = [
        (int(q), float(p), int(o))
        for q, p, o in zip(depth.quantities[:, row], prices, depth.orders[:, row], strict=True)
    ]
    book: Depth = (tuple(levels[:LEVELS]), tuple(levels[LEVELS:]))
    buy, sell = int(depth.buy[row]), int(depth.sell[row])
    tick = orjson.loads(
        PAYLOADS[1].tick(
            Stamp.of(0.0, IST), 1.0, 0, 0, None, None, None, None, None, 1, True, None,
            book, buy, sell,
        )
    )  # fmt: skip
    return {k: tick[k] for k in ("depth", "total_buy_quantity", "total_sell_quantity")}


def _chain_depth(draw: st.DrawFn, n: int) -> ChainDepth:
    big = draw(st.sampled_from([99, 9_999, 10_000, 12_345_678]))
    cells = st.lists(st.integers(0, big), min_size=10 * n, max_size=10 * n)
    ticks = np.array(draw(cells)).reshape(10, n) * 20 + draw(st.integers(0, 19))
    quantities = np.array(draw(cells)).reshape(10, n)
    orders = np.array(draw(st.lists(st.integers(0, 99), min_size=10 * n, max_size=10 * n)))
    sides = quantities.reshape(2, LEVELS, n).sum(axis=1)
    return ChainDepth(ticks, quantities, orders.reshape(10, n), sides[0], sides[1], 0.05)


@st.composite
def _depths(draw: st.DrawFn) -> list[ChainDepth]:
    """A few chain ticks of one chain, some handing the sizes of the tick before again."""
    n = draw(st.integers(1, 6))
    out = [_chain_depth(draw, n)]
    for again in draw(st.lists(st.booleans(), max_size=3)):
        fresh = _chain_depth(draw, n)
        if again:
            last = out[-1]
            fresh = fresh._replace(
                quantities=last.quantities, orders=last.orders, buy=last.buy, sell=last.sell
            )
        out.append(fresh)
    return out


@settings(max_examples=60, deadline=None)
@given(depths=_depths())
def test_the_written_book_is_the_live_paths_json_for_any_numbers(depths: list[ChainDepth]) -> None:
    writer = BookWriter()
    for depth in depths:
        rows = writer.rows(depth)
        assert len(rows) == depth.ticks.shape[1]
        for row, written in enumerate(rows):
            assert orjson.loads(b"{" + written + b"}") == _live_book(depth, row)
