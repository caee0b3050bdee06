"""Underlyings are configuration: names are checked, facts are Kite's and the exchanges'."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tickfleet.config.settings import Settings
from tickfleet.config.underlyings import (
    KNOWN,
    THURSDAY,
    TUESDAY,
    UnknownUnderlyingError,
    by_index_token,
    parse_underlyings,
)
from tickfleet.kite.tokens import SEGMENT_IDS, segment_id_of


def test_names_are_upper_cased_kept_in_order_and_once_each() -> None:
    assert parse_underlyings(" nifty, SENSEX ,banknifty,NIFTY") == ("NIFTY", "SENSEX", "BANKNIFTY")


@pytest.mark.parametrize("text", ["", " , ", "NIFTY,BANKNIFTTY"])
def test_an_empty_or_unknown_name_is_refused_with_what_is_known(text: str) -> None:
    with pytest.raises(UnknownUnderlyingError) as refused:
        parse_underlyings(text)
    if "BANKNIFTTY" in text:
        assert "unknown BANKNIFTTY" in str(refused.value)
        assert "known: NIFTY, BANKNIFTY, FINNIFTY, MIDCPNIFTY, SENSEX, BANKEX" in str(refused.value)


def test_settings_refuse_an_unknown_underlying_at_start_up() -> None:
    with pytest.raises(ValidationError, match="unknown GOLD"):
        Settings(underlyings="NIFTY,GOLD")
    assert Settings().underlying_names == ("NIFTY",)
    assert Settings(underlyings="sensex,nifty").underlying_names == ("SENSEX", "NIFTY")


@pytest.mark.parametrize(
    ("name", "token", "quote"),
    [
        ("NIFTY", 256265, "NSE:NIFTY 50"),
        ("BANKNIFTY", 260105, "NSE:NIFTY BANK"),
        ("FINNIFTY", 257801, "NSE:NIFTY FIN SERVICE"),
        ("MIDCPNIFTY", 288009, "NSE:NIFTY MID SELECT"),
        ("SENSEX", 265, "BSE:SENSEX"),
        ("BANKEX", 274441, "BSE:BANKEX"),
    ],
)
def test_index_tokens_and_quote_keys_are_kites(name: str, token: int, quote: str) -> None:
    underlying = KNOWN[name]
    assert underlying.index_token == token
    assert segment_id_of(token) == SEGMENT_IDS["INDICES"]
    assert underlying.quote_key == quote
    assert by_index_token(token) is underlying


def test_nse_expires_on_tuesdays_bse_on_thursdays_one_weekly_index_each() -> None:
    for u in KNOWN.values():
        assert u.expiry_weekday == (TUESDAY if u.exchange == "NFO" else THURSDAY), u.name
    weekly = sorted((u.exchange, u.name) for u in KNOWN.values() if u.weekly)
    assert weekly == [("BFO", "SENSEX"), ("NFO", "NIFTY")]


def test_codes_tell_apart_the_underlyings_of_one_exchange() -> None:
    pairs = [(u.exchange, u.code) for u in KNOWN.values()]
    assert len(set(pairs)) == len(pairs)
    assert KNOWN["NIFTY"].code == 0


def test_niftys_generated_facts_come_from_the_settings_others_from_the_table() -> None:
    settings = Settings(
        underlyings="NIFTY,BANKNIFTY",
        mock_underlying_price=25000.0,
        mock_strike_step=100,
        mock_lot_size=75,
        expiry_weekday=3,
    )
    nifty = settings.underlying("NIFTY")
    assert (nifty.spot, nifty.strike_step, nifty.lot_size, nifty.expiry_weekday) == (
        25000.0,
        100,
        75,
        3,
    )
    assert settings.underlying("BANKNIFTY") == KNOWN["BANKNIFTY"]
    assert [u.name for u in settings.configured_underlyings()] == ["NIFTY", "BANKNIFTY"]
