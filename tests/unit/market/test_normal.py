from __future__ import annotations

import math

import numpy as np
import pytest

from tickfleet.market.normal import cdf, cdf_pair, pdf

pytestmark = [pytest.mark.timeout(30), pytest.mark.filterwarnings("error")]


def reference_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def test_cdf_matches_erfc_to_double_precision_over_the_whole_range() -> None:
    x = np.linspace(-40.0, 40.0, 80_001)
    expected = np.array([reference_cdf(v) for v in x])
    assert np.max(np.abs(cdf(x) - expected)) < 1e-14


def test_lower_tail_keeps_relative_accuracy() -> None:
    x = np.linspace(-37.0, -1.0, 36_001)
    expected = np.array([reference_cdf(v) for v in x])
    assert np.max(np.abs(cdf(x) / expected - 1.0)) < 1e-8


def test_pair_is_symmetric_and_sums_to_one() -> None:
    x = np.linspace(-12.0, 12.0, 2_401)
    lower, upper = cdf_pair(x)
    np.testing.assert_array_equal(upper, cdf(-x))
    np.testing.assert_allclose(lower + upper, 1.0, rtol=0, atol=1e-15)


def test_infinities_and_nan_without_warnings() -> None:
    values = cdf([np.inf, -np.inf, np.nan, 0.0, -38.0, 38.0])
    np.testing.assert_array_equal(values[[0, 1, 3, 4, 5]], [1.0, 0.0, 0.5, 0.0, 1.0])
    assert np.isnan(values[2])


def test_shapes_are_kept() -> None:
    assert cdf(1.0).shape == ()
    assert float(cdf(1.0)) == pytest.approx(reference_cdf(1.0), abs=1e-15)
    assert cdf(np.zeros((3, 2))).shape == (3, 2)


def test_pdf_is_the_standard_normal_density() -> None:
    x = np.array([-3.0, -0.5, 0.0, 1.25, 50.0])
    expected = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    np.testing.assert_allclose(pdf(x), expected, rtol=1e-15)
