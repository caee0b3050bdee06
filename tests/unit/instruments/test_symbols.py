from __future__ import annotations

from datetime import date

import pytest

from tickfleet.instruments.symbols import monthly_option_symbol, weekly_option_symbol


@pytest.mark.parametrize(
    ("expiry", "strike", "option_type", "expected"),
    [
        (date(2025, 11, 4), 24000, "CE", "NIFTY25N0424000CE"),
        (date(2025, 11, 11), 23950, "PE", "NIFTY25N1123950PE"),
        (date(2026, 1, 6), 24000, "CE", "NIFTY2610624000CE"),
        (date(2026, 9, 15), 25000, "PE", "NIFTY2691525000PE"),
        (date(2025, 10, 7), 24500, "CE", "NIFTY25O0724500CE"),
        (date(2025, 12, 2), 26000, "CE", "NIFTY25D0226000CE"),
    ],
)
def test_weekly_symbols(expiry: date, strike: int, option_type: str, expected: str) -> None:
    assert weekly_option_symbol("NIFTY", expiry, strike, option_type) == expected


@pytest.mark.parametrize(
    ("expiry", "strike", "option_type", "expected"),
    [
        (date(2025, 11, 25), 24000, "CE", "NIFTY25NOV24000CE"),
        (date(2025, 12, 30), 24050, "PE", "NIFTY25DEC24050PE"),
        (date(2026, 1, 27), 100000, "CE", "NIFTY26JAN100000CE"),
    ],
)
def test_monthly_symbols(expiry: date, strike: int, option_type: str, expected: str) -> None:
    assert monthly_option_symbol("NIFTY", expiry, strike, option_type) == expected


def test_whole_float_strikes_print_without_decimals() -> None:
    assert monthly_option_symbol("NIFTY", date(2025, 11, 25), 24000.0, "CE") == "NIFTY25NOV24000CE"
    assert weekly_option_symbol("X", date(2025, 11, 4), 102.5, "PE") == "X25N04102.5PE"
