from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.instruments.samples import SAMPLES
from tickfleet.instruments.csv_dump import read_dump
from tickfleet.kite.tokens import (
    MAX_EXCHANGE_TOKEN,
    SEGMENT_IDS,
    encode_token,
    exchange_token_of,
    segment_id_for,
    segment_id_of,
)


def test_nifty_index_token_is_exchange_token_1001_in_the_indices_segment() -> None:
    assert segment_id_of(256265) == SEGMENT_IDS["INDICES"] == 9
    assert exchange_token_of(256265) == 1001
    assert encode_token(1001, 9) == 256265


@pytest.mark.parametrize("exchange_token", [0, 1, 1001, 47164, 533139, MAX_EXCHANGE_TOKEN])
@pytest.mark.parametrize("segment_id", sorted(SEGMENT_IDS.values()))
def test_encode_and_decode_are_inverse(exchange_token: int, segment_id: int) -> None:
    token = encode_token(exchange_token, segment_id)
    assert (exchange_token_of(token), segment_id_of(token)) == (exchange_token, segment_id)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_every_sample_row_token_encodes_its_exchange_token_and_segment(path: Path) -> None:
    instruments = read_dump(path)
    assert instruments
    for item in instruments:
        segment_id = segment_id_for(item.exchange, item.segment)
        assert encode_token(item.exchange_token, segment_id) == item.instrument_token, item


def test_sample_covers_more_than_one_segment() -> None:
    seen = {segment_id_of(item.instrument_token) for path in SAMPLES for item in read_dump(path)}
    assert seen == {SEGMENT_IDS["NSE"], SEGMENT_IDS["NFO"], SEGMENT_IDS["BSE"]}


def test_segment_ids_follow_the_exchange_except_for_indices() -> None:
    assert segment_id_for("NFO", "NFO-OPT") == 2
    assert segment_id_for("NFO", "NFO-FUT") == 2
    assert segment_id_for("NSE", "INDICES") == 9
    assert segment_id_for("BSE", "INDICES") == 9
    assert segment_id_for("MCX", "MCX-FUT") == 7


def test_unknown_exchange_is_refused() -> None:
    with pytest.raises(ValueError, match="XYZ"):
        segment_id_for("XYZ", "XYZ")


@pytest.mark.parametrize(
    ("exchange_token", "segment_id"), [(-1, 2), (MAX_EXCHANGE_TOKEN + 1, 2), (5, 256)]
)
def test_encode_refuses_values_that_do_not_fit(exchange_token: int, segment_id: int) -> None:
    with pytest.raises(ValueError):
        encode_token(exchange_token, segment_id)
