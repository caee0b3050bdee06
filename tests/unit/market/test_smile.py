from __future__ import annotations

import math

import numpy as np
import pytest

from tickfleet.config.settings import Settings
from tickfleet.market.smile import SmileSpec, smile_iv

pytestmark = [pytest.mark.timeout(10), pytest.mark.filterwarnings("error")]

SPOT = 24_000.0
WEEK, QUARTER = 7 / 365, 90 / 365


def test_at_the_money_is_the_base_iv() -> None:
    spec = SmileSpec(base_iv=0.13)
    assert float(smile_iv(spec, SPOT, SPOT, QUARTER)) == pytest.approx(0.13, abs=1e-15)


def test_put_side_trades_above_the_call_side() -> None:
    spec = SmileSpec()
    for m in (0.02, 0.05, 0.1):
        below, above = SPOT * math.exp(-m), SPOT * math.exp(m)
        ivs = smile_iv(spec, [below, above], SPOT, QUARTER)
        assert ivs[0] > ivs[1]


def test_wings_curve_up_and_short_dated_wings_are_steeper() -> None:
    spec = SmileSpec()
    strikes = SPOT * np.exp(np.array([-0.08, -0.04, 0.0, 0.04, 0.08]))
    week, quarter = smile_iv(spec, strikes, SPOT, WEEK), smile_iv(spec, strikes, SPOT, QUARTER)
    assert week[0] > week[1] > week[2] and week[4] > week[2]
    assert np.all(week[[0, 1, 3, 4]] > quarter[[0, 1, 3, 4]])
    assert week[2] == quarter[2]


def test_always_within_the_clamp() -> None:
    spec = SmileSpec()
    strikes = np.geomspace(1e-6, 1e9, 2_000)
    for years in (0.0, 1e-6, WEEK, 1.0, 30.0):
        ivs = smile_iv(spec, strikes, SPOT, years)
        assert np.all((ivs >= 0.05) & (ivs <= 1.5))
    assert float(smile_iv(spec, 1e-6, SPOT, WEEK)) == 1.5


def test_floor_applies_when_the_quadratic_dips() -> None:
    spec = SmileSpec(base_iv=0.06, skew=-8.0, curvature=0.0, short_dated_curvature=0.0)
    assert float(smile_iv(spec, SPOT * 1.1, SPOT, QUARTER)) == 0.05


def test_invalid_strike_or_spot_is_nan() -> None:
    ivs = smile_iv(SmileSpec(), [0.0, -5.0, SPOT], SPOT, WEEK)
    assert np.isnan(ivs[0]) and np.isnan(ivs[1]) and ivs[2] == pytest.approx(0.13)


def test_spec_is_validated_and_read_from_settings() -> None:
    with pytest.raises(ValueError):
        SmileSpec(base_iv=0.04)
    with pytest.raises(ValueError):
        SmileSpec(wing_decay_years=0.0)
    assert SmileSpec.from_settings(Settings(mock_base_iv=0.2)).base_iv == 0.2
