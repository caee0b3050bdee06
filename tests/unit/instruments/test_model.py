from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from tests.unit.instruments.samples import OPTION
from tickfleet.instruments.model import derive_underlying


@pytest.mark.parametrize(
    ("tradingsymbol", "name", "segment", "instrument_type", "expected"),
    [
        ("BANKNIFTY18JAN23500CE", "", "NFO-OPT", "CE", "BANKNIFTY"),
        ("ADANIPORTS17DEC490PE", "", "NFO-OPT", "PE", "ADANIPORTS"),
        ("BAJAJ-AUTO25NOVFUT", "", "NFO-FUT", "FUT", "BAJAJ-AUTO"),
        ("NIFTY25N0424000CE", "NIFTY", "NFO-OPT", "CE", "NIFTY"),
        ("NIFTY 50", "NIFTY 50", "INDICES", "EQ", "NIFTY"),
        ("NIFTY BANK", "NIFTY BANK", "INDICES", "EQ", "BANKNIFTY"),
        ("SENSEX", "SENSEX", "INDICES", "EQ", "SENSEX"),
        ("CDSL-BE", "CENTRAL DEPO SER (I)", "NSE", "EQ", "CDSL-BE"),
    ],
)
def test_underlying_derivation(
    tradingsymbol: str, name: str, segment: str, instrument_type: str, expected: str
) -> None:
    assert derive_underlying(tradingsymbol, name, segment, instrument_type) == expected


def test_options_are_ce_and_pe_only() -> None:
    assert OPTION.is_option
    assert replace(OPTION, instrument_type="PE").is_option
    assert not replace(OPTION, instrument_type="FUT").is_option
    assert not replace(OPTION, instrument_type="EQ").is_option


def test_a_contract_is_expired_once_its_expiry_day_is_the_last_expired_one() -> None:
    # The caller passes MarketHours.last_expired_day(now): the expiry day itself once its
    # close has passed, the day before until then.
    assert not OPTION.is_expired(date(2018, 1, 24))
    assert OPTION.is_expired(date(2018, 1, 25))
    assert OPTION.is_expired(date(2018, 1, 26))


def test_an_undated_instrument_never_expires() -> None:
    assert not replace(OPTION, expiry=None).is_expired(date(2100, 1, 1))


def test_instruments_are_immutable() -> None:
    with pytest.raises(AttributeError):
        OPTION.last_price = 1.0  # type: ignore[misc]
