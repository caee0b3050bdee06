from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from itertools import pairwise

import pytest

from tests.unit.instruments.samples import make_spec
from tickfleet.config.settings import Settings
from tickfleet.config.underlyings import KNOWN
from tickfleet.instruments.expiry_calendar import last_weekday_of_month
from tickfleet.instruments.model import Instrument
from tickfleet.instruments.universe import (
    INDEX_TOKEN,
    MAX_MONTHLY_EXPIRIES,
    MAX_STRIKES_EACH_SIDE,
    MAX_WEEKLY_EXPIRIES,
    UniverseSpec,
    generate_universe,
    option_exchange_token,
    strike_grid,
)
from tickfleet.kite.tokens import SEGMENT_IDS, exchange_token_of, segment_id_of
from tickfleet.market.calendar import load_calendar

NOV_4 = date(2025, 11, 4)  # a Tuesday, weekly expiry day
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def options(universe: list[Instrument]) -> list[Instrument]:
    return [item for item in universe if item.is_option]


def expiries(universe: list[Instrument]) -> list[date]:
    return sorted({item.expiry for item in options(universe) if item.expiry is not None})


def test_index_comes_first_as_kite_lists_it() -> None:
    index = generate_universe(NOV_4, 24012.3, make_spec())[0]
    assert (index.instrument_token, index.exchange_token) == (INDEX_TOKEN, 1001)
    assert (index.tradingsymbol, index.name, index.underlying) == ("NIFTY 50", "NIFTY 50", "NIFTY")
    assert (index.instrument_type, index.segment, index.exchange) == ("EQ", "INDICES", "NSE")
    assert index.last_price == 24012.3
    assert index.expiry is None
    assert segment_id_of(index.instrument_token) == SEGMENT_IDS["INDICES"]


def test_known_expiry_days_for_a_november_tuesday() -> None:
    assert expiries(generate_universe(NOV_4, 24000.0, make_spec())) == [
        date(2025, 11, 4),
        date(2025, 11, 11),
        date(2025, 11, 18),
        date(2025, 11, 25),
        date(2025, 12, 30),
        date(2026, 1, 27),
    ]


@pytest.mark.parametrize("weekday", [1, 3])
@pytest.mark.parametrize("today", [NOV_4 + timedelta(days=n) for n in range(0, 60, 5)], ids=str)
def test_every_expiry_is_on_the_expiry_weekday(today: date, weekday: int) -> None:
    spec = make_spec(expiry_weekday=weekday, weekly_expiries=3, monthly_expiries=2)
    days = expiries(generate_universe(today, 24000.0, spec))
    assert all(day.weekday() == weekday and day >= today for day in days)
    weekly = days[:3]
    assert weekly[0] < today + timedelta(days=7)
    assert [b - a for a, b in pairwise(weekly)] == [timedelta(days=7)] * 2
    monthly = [day for day in days if day == last_weekday_of_month(day.year, day.month, weekday)]
    assert len(monthly) >= 2
    assert 3 <= len(days) <= 5


@pytest.mark.parametrize("weekday", [1, 3])
def test_monthly_symbols_only_on_the_last_expiry_weekday_of_the_month(weekday: int) -> None:
    spec = make_spec(expiry_weekday=weekday, weekly_expiries=8, monthly_expiries=3)
    universe = options(generate_universe(NOV_4, 24000.0, spec))
    monthly_days = set()
    for item in universe:
        assert item.expiry is not None
        month = MONTHS[item.expiry.month - 1]
        is_last = item.expiry == last_weekday_of_month(item.expiry.year, item.expiry.month, weekday)
        assert item.tradingsymbol.startswith(f"NIFTY{item.expiry:%y}{month}") == is_last, item
        if is_last:
            monthly_days.add(item.expiry)
    assert len(monthly_days) >= 3


def test_known_symbols_weekly_and_monthly() -> None:
    symbols = {item.tradingsymbol for item in generate_universe(NOV_4, 24000.0, make_spec())}
    assert {"NIFTY25N0424000CE", "NIFTY25N1124000PE", "NIFTY25NOV24000CE"} <= symbols
    assert {"NIFTY25DEC24000PE", "NIFTY26JAN24000CE"} <= symbols
    assert "NIFTY25N2524000CE" not in symbols  # the monthly expiry has no weekly symbol


def test_january_weekly_uses_month_code_1() -> None:
    symbols = {
        item.tradingsymbol for item in generate_universe(date(2026, 1, 5), 24000.0, make_spec())
    }
    assert "NIFTY2610624000CE" in symbols


@pytest.mark.parametrize(
    ("spot", "centre"), [(24012.3, 24000), (24024.99, 24000), (24025.0, 24050), (23980.0, 24000)]
)
def test_strike_grid_is_centred_on_the_rounded_spot(spot: float, centre: int) -> None:
    strikes = sorted({item.strike for item in options(generate_universe(NOV_4, spot, make_spec()))})
    assert len(strikes) == 2 * 20 + 1
    assert strikes[20] == centre
    assert [b - a for a, b in pairwise(strikes)] == [50.0] * 40


def test_strike_grid_drops_non_positive_strikes() -> None:
    assert strike_grid(120.0, 50, 4) == [50, 100, 150, 200, 250, 300]


def test_each_strike_and_expiry_has_one_call_and_one_put() -> None:
    spec = make_spec(strikes_each_side=7)
    universe = options(generate_universe(NOV_4, 24000.0, spec))
    kinds: dict[tuple[date | None, float], list[str]] = defaultdict(list)
    for item in universe:
        kinds[(item.expiry, item.strike)].append(item.instrument_type)
    assert len(kinds) == len(expiries(universe)) * 15
    assert all(sorted(found) == ["CE", "PE"] for found in kinds.values())


def test_contract_attributes() -> None:
    universe = options(generate_universe(NOV_4, 24000.0, make_spec(lot_size=65)))
    for item in universe:
        assert (item.lot_size, item.tick_size) == (65, 0.05)
        assert (item.name, item.underlying) == ("NIFTY", "NIFTY")
        assert (item.segment, item.exchange) == ("NFO-OPT", "NFO")
        assert segment_id_of(item.instrument_token) == SEGMENT_IDS["NFO"]
        assert exchange_token_of(item.instrument_token) == item.exchange_token
        assert item.tradingsymbol.endswith(f"{int(item.strike)}{item.instrument_type}")


def test_tokens_and_symbols_are_unique_and_fit_a_signed_32_bit_column() -> None:
    universe = generate_universe(NOV_4, 24000.0, make_spec())
    assert len({item.instrument_token for item in universe}) == len(universe)
    assert len({item.tradingsymbol for item in universe}) == len(universe)
    assert all(0 < item.instrument_token < 2**31 for item in universe)


def test_generation_is_deterministic() -> None:
    spec = make_spec()
    assert generate_universe(NOV_4, 24012.3, spec) == generate_universe(NOV_4, 24012.3, spec)


def test_tokens_stay_the_same_for_contracts_present_in_two_generations() -> None:
    spec = make_spec()
    first = {item.tradingsymbol: item for item in generate_universe(NOV_4, 24000.0, spec)}
    later = generate_universe(date(2025, 11, 13), 24310.0, spec)
    shared = [item for item in later if item.tradingsymbol in first]
    assert len(shared) > 100
    assert len(shared) < len(later)
    for item in shared:
        assert item.instrument_token == first[item.tradingsymbol].instrument_token


def test_tokens_stay_unique_at_the_widest_strike_window() -> None:
    spec = make_spec(strikes_each_side=MAX_STRIKES_EACH_SIDE, weekly_expiries=2, monthly_expiries=0)
    universe = generate_universe(NOV_4, 100_000.0, spec)
    assert len(options(universe)) == 2 * 2 * (2 * MAX_STRIKES_EACH_SIDE + 1)
    assert len({item.instrument_token for item in universe}) == len(universe)


@pytest.mark.parametrize(
    "today", [date(2025, 11, 26), date(2025, 11, 25), date(2025, 12, 31)], ids=str
)
def test_tokens_stay_unique_at_the_longest_expiry_window(today: date) -> None:
    spec = make_spec(
        strikes_each_side=1,
        weekly_expiries=MAX_WEEKLY_EXPIRIES,
        monthly_expiries=MAX_MONTHLY_EXPIRIES,
    )
    universe = generate_universe(today, 24000.0, spec)
    assert len({item.instrument_token for item in universe}) == len(universe)


@pytest.mark.parametrize(
    "overrides",
    [
        {"strikes_each_side": MAX_STRIKES_EACH_SIDE + 1},
        {"weekly_expiries": MAX_WEEKLY_EXPIRIES + 1},
        {"monthly_expiries": MAX_MONTHLY_EXPIRIES + 1},
        {"strike_step": 0},
        {"expiry_weekday": 7},
        {"lot_size": 0},
        {"spot": float("nan")},
    ],
    ids=str,
)
def test_spec_refuses_windows_the_token_layout_cannot_hold(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="UniverseSpec"):
        make_spec(**overrides)


def test_spec_from_settings() -> None:
    settings = Settings(
        mock_underlying_price=25100.0,
        mock_strike_step=100,
        mock_strikes_each_side=5,
        mock_weekly_expiries=2,
        mock_monthly_expiries=1,
        expiry_weekday=3,
        mock_lot_size=75,
        exchange_calendar="XBOM",
    )
    assert UniverseSpec.from_settings(settings) == UniverseSpec(
        spot=25100.0,
        strike_step=100,
        strikes_each_side=5,
        weekly_expiries=2,
        monthly_expiries=1,
        expiry_weekday=3,
        lot_size=75,
        trading=load_calendar("XBOM"),
        underlying=settings.underlying("NIFTY"),
    )


def test_every_underlying_gets_its_own_tokens_exchange_and_expiries() -> None:
    settings = Settings(underlyings="NIFTY,BANKNIFTY,FINNIFTY,MIDCPNIFTY,SENSEX,BANKEX")
    today = date(2026, 6, 8)  # a Monday
    rows = {
        spec.underlying.name: generate_universe(today, spec.spot, spec)
        for spec in UniverseSpec.configured(settings)
    }
    tokens = [r.instrument_token for universe in rows.values() for r in universe]
    assert len(set(tokens)) == len(tokens), "two underlyings' contracts share a token"
    for name, universe in rows.items():
        index, options = universe[0], universe[1:]
        u = KNOWN[name]
        assert (index.instrument_token, index.exchange, index.underlying) == (
            u.index_token,
            u.index_exchange,
            name,
        )
        assert {(o.exchange, o.segment) for o in options} == {(u.exchange, f"{u.exchange}-OPT")}
        assert {segment_id_of(o.instrument_token) for o in options} == {SEGMENT_IDS[u.exchange]}
        assert {o.underlying for o in options} == {name}
        assert {o.lot_size for o in options} == {u.lot_size}
        assert all(o.strike % u.strike_step == 0 for o in options)
        expiries = sorted({o.expiry for o in options if o.expiry is not None})
        assert {e.weekday() for e in expiries} <= {u.expiry_weekday, u.expiry_weekday - 1}
        if not u.weekly:  # monthly only: one expiry a month
            assert len({(e.year, e.month) for e in expiries}) == len(expiries), name


def test_niftys_tokens_keep_the_layout_from_before_several_underlyings() -> None:
    # bit 22 generated, bit 21 put, bits 11-20 expiry day mod 1024, bits 0-10 strike slot
    expiry, strike = date(2026, 6, 16), 24000
    before = 1 << 22 | 1 << 21 | (expiry.toordinal() % 1024) << 11 | (strike // 50) % 2048
    assert option_exchange_token(expiry, strike, 50, "PE") == before
    assert option_exchange_token(expiry, strike, 50, "PE", code=3) == before | 1 << 23 | 1 << 10
