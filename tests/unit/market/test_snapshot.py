from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tickfleet.config.settings import Settings
from tickfleet.market.snapshot import (
    MockUnderlyingSnapshot,
    UnderlyingBuilder,
    WalkSpec,
)

pytestmark = pytest.mark.timeout(30)

IST = ZoneInfo("Asia/Kolkata")
START = datetime(2025, 1, 6, 18, 0, tzinfo=IST)


def walk(
    builder: UnderlyingBuilder, steps: int, seed: int = 1, start: datetime = START
) -> list[MockUnderlyingSnapshot]:
    rng = np.random.default_rng(seed)
    return [builder.next(start + timedelta(seconds=i), rng) for i in range(steps)]


def test_versions_increase_by_one_and_ohlc_stays_consistent() -> None:
    snaps = walk(UnderlyingBuilder(WalkSpec(), 24_000.0), 2_000)
    assert [s.version for s in snaps] == list(range(1, 2_001))
    for s in snaps:
        assert s.low <= min(s.price, s.open) and max(s.price, s.open) <= s.high
        assert s.open == 24_000.0 and s.close == 24_000.0 and s.is_mock
    assert snaps[-1].high == max(s.price for s in snaps)
    assert snaps[-1].low == min([s.price for s in snaps] + [24_000.0])
    volumes = [s.volume for s in snaps]
    assert volumes == sorted(volumes) and volumes[-1] > volumes[0]
    assert snaps[1].ts - snaps[0].ts == 1.0


def test_walk_has_no_drift_and_the_configured_step_volatility() -> None:
    spec = WalkSpec(volatility=0.14, tick_seconds=1.0)
    snaps = walk(UnderlyingBuilder(spec, 24_000.0), 40_000, seed=42)
    prices = np.array([24_000.0] + [s.price for s in snaps])
    returns = np.diff(np.log(prices))
    expected = 0.14 * math.sqrt(1.0 / (252 * 6.25 * 3600))
    assert spec.step_sigma == pytest.approx(expected)
    assert abs(returns.mean()) < 4 * expected / math.sqrt(len(returns))
    assert returns.std() == pytest.approx(expected, rel=0.03)
    points = np.diff(prices)
    assert 0.8 < points.std() < 2.5  # index points per second, as NIFTY moves


def test_step_volatility_scales_with_the_square_root_of_the_tick() -> None:
    one = WalkSpec(tick_seconds=1.0)
    four = WalkSpec(tick_seconds=4.0)
    stdevs = []
    for spec in (one, four):
        snaps = walk(UnderlyingBuilder(spec, 24_000.0), 20_000, seed=7)
        stdevs.append(np.diff(np.log([s.price for s in snaps])).std())
    assert stdevs[1] / stdevs[0] == pytest.approx(2.0, rel=0.05)


def test_new_session_sets_close_and_resets_the_day() -> None:
    builder = UnderlyingBuilder(WalkSpec(), 24_000.0, close=23_900.0)
    day_one = walk(builder, 500, start=datetime(2025, 1, 6, 23, 0, tzinfo=IST))
    day_two = walk(builder, 500, start=datetime(2025, 1, 7, 0, 0, 1, tzinfo=IST), seed=2)
    assert day_one[-1].close == 23_900.0
    first = day_two[0]
    assert first.close == day_one[-1].price
    assert first.open == day_one[-1].price
    assert first.volume < day_one[-1].volume
    assert first.high == max(first.open, first.price) and first.low == min(first.open, first.price)
    assert all(s.open == first.open and s.close == first.close for s in day_two)
    assert day_two[-1].version == 1_000


def test_session_follows_the_market_timezone_not_utc() -> None:
    builder = UnderlyingBuilder(WalkSpec(tz="Asia/Kolkata"), 24_000.0)
    rng = np.random.default_rng(0)
    before = builder.next(datetime(2025, 1, 6, 18, 0, tzinfo=ZoneInfo("UTC")), rng)  # 23:30 IST
    after = builder.next(datetime(2025, 1, 6, 18, 31, tzinfo=ZoneInfo("UTC")), rng)  # 00:01 IST
    assert before.close == 24_000.0
    assert after.close == before.price and after.open == before.price


def test_resume_continues_versions_and_the_session() -> None:
    first = UnderlyingBuilder(WalkSpec(), 24_000.0)
    last = walk(first, 100)[-1]
    resumed = UnderlyingBuilder.resume(WalkSpec(), last)
    assert resumed.version == 100
    nxt = resumed.next(START + timedelta(seconds=100), np.random.default_rng(3))
    assert nxt.version == 101
    assert (nxt.open, nxt.close) == (last.open, last.close)
    assert nxt.high >= last.high and nxt.low <= last.low and nxt.volume > last.volume


def test_resume_from_an_earlier_day_starts_a_new_session() -> None:
    last = walk(UnderlyingBuilder(WalkSpec(), 24_000.0), 10)[-1]
    resumed = UnderlyingBuilder.resume(WalkSpec(), last)
    nxt = resumed.next(START + timedelta(days=1), np.random.default_rng(3))
    assert nxt.close == last.price and nxt.volume < last.volume


def test_builder_needs_a_positive_price() -> None:
    with pytest.raises(ValueError):
        UnderlyingBuilder(WalkSpec(), 0.0)


def test_spec_from_settings() -> None:
    settings = Settings(mock_volatility=0.2, mock_tick_interval_seconds=0.5, market_timezone="UTC")
    spec = WalkSpec.from_settings(settings)
    assert (spec.volatility, spec.tick_seconds, spec.tz) == (0.2, 0.5, "UTC")


def test_json_round_trip() -> None:
    snap = walk(UnderlyingBuilder(WalkSpec(), 24_000.0), 3)[-1]
    assert MockUnderlyingSnapshot.from_json(snap.to_json()) == snap
    assert MockUnderlyingSnapshot.from_json(snap.to_json().decode()) == snap


def test_snapshot_is_immutable() -> None:
    snap = walk(UnderlyingBuilder(WalkSpec(), 24_000.0), 1)[0]
    with pytest.raises(AttributeError):
        snap.price = 1.0  # type: ignore[misc]
