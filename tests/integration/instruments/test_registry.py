from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from tests.unit.instruments.samples import SAMPLE_ALL, make_spec
from tickfleet.instruments import (
    Instrument,
    InstrumentRegistry,
    InstrumentRow,
    RefreshSummary,
    generate_universe,
    read_dump,
)
from tickfleet.storage.sql import SessionFactory

NOV_4 = date(2025, 11, 4)
NOW = datetime(2025, 11, 4, 3, 0, tzinfo=UTC)


def universe(today: date = NOV_4, spot: float = 24000.0, **spec: object) -> list[Instrument]:
    return generate_universe(today, spot, make_spec(**spec))


def mixed() -> list[Instrument]:
    """The NIFTY universe plus the sample dump's equities and other underlyings' options."""
    return [*universe(strikes_each_side=6), *read_dump(SAMPLE_ALL)]


def sort_key(item: Instrument) -> tuple[bool, date, float, str, str, int]:
    return (
        item.expiry is not None,
        item.expiry or date.min,
        item.strike,
        item.instrument_type,
        item.tradingsymbol,
        item.instrument_token,
    )


def test_first_load_adds_everything(registry: InstrumentRegistry) -> None:
    instruments = mixed()
    summary = registry.replace_all(instruments, NOW)
    assert summary == RefreshSummary(
        added=len(instruments), updated=0, removed=0, total=len(instruments)
    )
    assert registry.count() == len(instruments)


def test_get_returns_the_stored_instrument(registry: InstrumentRegistry) -> None:
    instruments = mixed()
    registry.replace_all(instruments, NOW)
    for item in instruments[:: max(1, len(instruments) // 25)]:
        assert registry.get(item.instrument_token) == item
    assert registry.get(256265) == instruments[0]
    assert registry.get(1) is None


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"underlying": "NIFTY"},
        {"underlying": "BANKNIFTY"},
        {"underlying": "NIFTY", "expiry": date(2025, 11, 11)},
        {"underlying": "NIFTY", "instrument_type": "PE", "strike_min": 23900.0},
        {"instrument_type": "CE", "strike_min": 23800.0, "strike_max": 24100.0},
        {"expiry": date(2025, 11, 25), "instrument_type": "CE"},
        {"underlying": "NOSUCH"},
    ],
    ids=str,
)
def test_query_filters_and_orders(registry: InstrumentRegistry, filters: dict[str, object]) -> None:
    instruments = mixed()
    registry.replace_all(instruments, NOW)
    expected = sorted(
        (
            item
            for item in instruments
            if all(
                (
                    filters.get("underlying") in (None, item.underlying),
                    filters.get("expiry") in (None, item.expiry),
                    filters.get("instrument_type") in (None, item.instrument_type),
                    item.strike >= float(filters.get("strike_min", float("-inf"))),  # type: ignore[arg-type]
                    item.strike <= float(filters.get("strike_max", float("inf"))),  # type: ignore[arg-type]
                )
            )
        ),
        key=sort_key,
    )
    assert registry.query(**filters, limit=10_000) == expected  # type: ignore[arg-type]


def test_query_pages_with_limit_and_offset(registry: InstrumentRegistry) -> None:
    instruments = mixed()
    registry.replace_all(instruments, NOW)
    pages = [
        registry.query(limit=37, offset=offset) for offset in range(0, len(instruments) + 37, 37)
    ]
    assert all(len(page) == 37 for page in pages[:-2])
    assert [item for page in pages for item in page] == sorted(instruments, key=sort_key)
    assert registry.query(limit=5) == sorted(instruments, key=sort_key)[:5]
    assert registry.query(limit=0) == []


def test_query_refuses_negative_paging(registry: InstrumentRegistry) -> None:
    with pytest.raises(ValueError):
        registry.query(limit=-1)
    with pytest.raises(ValueError):
        registry.query(offset=-1)


def test_get_many_with_thousands_of_tokens(registry: InstrumentRegistry) -> None:
    instruments = universe(strikes_each_side=200)
    assert len(instruments) > 4000
    registry.replace_all(instruments, NOW)
    unknown = [3, 5, 7]
    found = registry.get_many([item.instrument_token for item in instruments] + unknown)
    assert found == {item.instrument_token: item for item in instruments}
    assert registry.get_many([]) == {}


def test_second_refresh_reports_added_updated_and_removed(registry: InstrumentRegistry) -> None:
    first = universe()
    registry.replace_all(first, NOW)
    later = NOV_4 + timedelta(days=8)
    second = universe(later, spot=24180.0)
    second = [
        replace(item, last_price=item.last_price + 1.5) if i % 10 == 0 else item
        for i, item in enumerate(second)
    ]
    before = {item.instrument_token: item for item in first}
    after = {item.instrument_token: item for item in second}
    changed = {token for token in before.keys() & after.keys() if before[token] != after[token]}
    assert changed

    summary = registry.replace_all(second, NOW + timedelta(days=8))

    assert summary == RefreshSummary(
        added=len(after.keys() - before.keys()),
        updated=len(changed),
        removed=len(before.keys() - after.keys()),
        total=len(second),
    )
    assert summary.added and summary.removed
    assert registry.count() == len(second)
    assert registry.get_many(before.keys() | after.keys()) == after


def test_refresh_stamps_every_row(
    registry: InstrumentRegistry, session_factory: SessionFactory
) -> None:
    registry.replace_all(universe(), NOW)
    later = NOW + timedelta(days=1)
    registry.replace_all(universe(NOV_4 + timedelta(days=1)), later)
    with session_factory() as session:
        stamps = set(session.scalars(select(InstrumentRow.refreshed_at)))
    assert {stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC) for stamp in stamps} == {later}


def test_unchanged_refresh_changes_nothing(registry: InstrumentRegistry) -> None:
    instruments = mixed()
    registry.replace_all(instruments, NOW)
    summary = registry.replace_all(list(reversed(instruments)), NOW + timedelta(hours=1))
    assert summary == RefreshSummary(added=0, updated=0, removed=0, total=len(instruments))


def test_expiries(registry: InstrumentRegistry) -> None:
    instruments = mixed()
    registry.replace_all(instruments, NOW)
    nifty_days = sorted(
        {item.expiry for item in instruments if item.underlying == "NIFTY" and item.expiry}
    )
    assert registry.expiries("NIFTY") == nifty_days
    assert registry.expiries("BANKNIFTY") == [
        date(2017, 11, 30),
        date(2017, 12, 28),
        date(2018, 1, 25),
    ]
    assert registry.expiries("NOSUCH") == []


def test_duplicate_tokens_are_refused_and_nothing_changes(registry: InstrumentRegistry) -> None:
    instruments = universe()
    registry.replace_all(instruments, NOW)
    duplicate = replace(instruments[5], tradingsymbol="OTHER")
    with pytest.raises(ValueError, match="appears twice"):
        registry.replace_all([*instruments[:3], duplicate, instruments[5]], NOW)
    assert registry.count() == len(instruments)


def test_empty_replacement_needs_consent(registry: InstrumentRegistry) -> None:
    registry.replace_all(universe(), NOW)
    with pytest.raises(ValueError, match="no instruments"):
        registry.replace_all([], NOW)
    assert registry.count() > 0
    summary = registry.replace_all([], NOW, allow_empty=True)
    assert summary.removed > 0 and summary.total == 0
    assert registry.count() == 0


@pytest.mark.timeout(60)
def test_concurrent_refreshes_serialise(registry: InstrumentRegistry) -> None:
    lists = [
        universe(strikes_each_side=100),
        universe(NOV_4 + timedelta(days=7), strikes_each_side=100),
    ]
    results: list[RefreshSummary] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(lists))

    def refresh(instruments: list[Instrument]) -> None:
        start.wait()
        try:
            results.append(registry.replace_all(instruments, NOW))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(items,)) for items in lists]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    assert errors == []
    assert len(results) == 2
    first, second = sorted(results, key=lambda summary: summary.removed)
    assert first.added == first.total and first.removed == 0
    assert second.removed > 0
    final = {item.instrument_token: item for item in registry.query(limit=100_000)}
    assert final in (
        {i.instrument_token: i for i in lists[0]},
        {i.instrument_token: i for i in lists[1]},
    )
