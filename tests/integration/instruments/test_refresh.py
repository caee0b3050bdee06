from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.unit.instruments.samples import make_spec
from tickfleet.instruments import (
    Instrument,
    InstrumentRegistry,
    InstrumentSourceError,
    OfflineUniverseSource,
    RefreshSummary,
    refresh_instruments,
)

NOV_4 = date(2025, 11, 4)
NOW = datetime(2025, 11, 4, 3, 0, tzinfo=UTC)


class FailingSource:
    name = "failing source"

    def fetch(self, today: date) -> list[Instrument]:
        raise InstrumentSourceError("the broker is down")


def test_refresh_loads_and_logs(
    registry: InstrumentRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    source = OfflineUniverseSource(make_spec())
    expected = source.fetch(NOV_4)
    with caplog.at_level(logging.INFO, logger="tickfleet.instruments.refresh"):
        summary = refresh_instruments(registry, source, NOV_4, NOW)
    assert summary == RefreshSummary(added=len(expected), updated=0, removed=0, total=len(expected))
    assert registry.get_many(item.instrument_token for item in expected) == {
        item.instrument_token: item for item in expected
    }
    assert (
        f"instruments refreshed from offline universe: added {len(expected)}, updated 0, "
        f"removed 0, total {len(expected)}"
    ) in caplog.messages


def test_next_week_drops_expired_contracts_and_keeps_the_tokens_of_the_rest(
    registry: InstrumentRegistry,
) -> None:
    source = OfflineUniverseSource(make_spec())
    first = {item.tradingsymbol: item for item in source.fetch(NOV_4)}
    refresh_instruments(registry, source, NOV_4, NOW)

    next_week = NOV_4 + timedelta(days=7)
    summary = refresh_instruments(registry, source, next_week, NOW + timedelta(days=7))

    second = source.fetch(next_week)
    # Refreshed before the open, when the last expired contracts are yesterday's.
    expired = [item for item in first.values() if item.is_expired(next_week - timedelta(days=1))]
    assert expired
    assert summary.removed == len(expired)
    assert summary.updated == 0
    assert summary.added == sum(1 for item in second if item.tradingsymbol not in first)
    assert registry.get_many(item.instrument_token for item in expired) == {}
    for item in second:
        if item.tradingsymbol in first:
            assert registry.get(first[item.tradingsymbol].instrument_token) == item


def test_failing_source_leaves_the_registry_alone(registry: InstrumentRegistry) -> None:
    refresh_instruments(registry, OfflineUniverseSource(make_spec()), NOV_4, NOW)
    before = registry.query(limit=100_000)
    with pytest.raises(InstrumentSourceError, match="broker is down"):
        refresh_instruments(registry, FailingSource(), NOV_4, NOW + timedelta(hours=1))
    assert registry.query(limit=100_000) == before
