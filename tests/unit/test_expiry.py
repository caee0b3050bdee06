"""One rule for "expired" shared by eviction and reloads, exact at the close of the expiry day."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date

import pytest

from tests.support.instants import ist
from tests.unit.instruments.samples import OPTION
from tickfleet.control.expiry import expired_tokens
from tickfleet.instruments.model import Instrument
from tickfleet.market.hours import MarketHours

HOURS = MarketHours()
EXPIRY = date(2026, 6, 16)  # a Tuesday weekly; the close is 15:30 IST


def option(token: int, expiry: date | None) -> Instrument:
    return replace(OPTION, instrument_token=token, expiry=expiry)


ROWS = {
    3: option(3, EXPIRY),
    1: option(1, date(2026, 6, 15)),  # expired the day before
    2: option(2, date(2026, 6, 23)),  # next week's
    4: option(4, None),  # undated: never expires
}


@pytest.mark.parametrize(
    ("second", "expired"),
    [((15, 29, 59), [1]), ((15, 30, 0), [1, 3]), ((15, 30, 1), [1, 3])],
    ids=["a second before the close", "at the close", "a second after"],
)
def test_a_contract_expires_at_the_close_of_its_expiry_day(
    second: tuple[int, int, int], expired: list[int]
) -> None:
    now = ist(2026, 6, 16, *second)
    assert expired_tokens(ROWS, HOURS, now) == expired
    assert [t for t in sorted(ROWS) if HOURS.is_expired(ROWS[t].expiry, now)] == expired


def test_the_instant_is_read_in_the_market_zone_whatever_zone_it_is_given_in() -> None:
    at_close = ist(2026, 6, 16, 15, 30).astimezone(UTC)
    just_before = ist(2026, 6, 16, 15, 29, 59).astimezone(UTC)
    assert expired_tokens(ROWS, HOURS, at_close) == [1, 3]
    assert expired_tokens(ROWS, HOURS, just_before) == [1]
