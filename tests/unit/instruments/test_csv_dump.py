from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.unit.instruments.samples import (
    OPTION,
    SAMPLE_ALL,
    SAMPLE_NSE,
    SAMPLES,
    data_lines,
    make_spec,
)
from tickfleet.instruments.csv_dump import COLUMNS, parse_dump, read_dump, write_dump
from tickfleet.instruments.errors import InstrumentDumpError
from tickfleet.instruments.model import Instrument
from tickfleet.instruments.universe import generate_universe

HEADER = ",".join(COLUMNS)
GOOD_ROW = "12073986,47164,BANKNIFTY18JAN23500CE,,2528.4,2018-01-25,23500.0,0.05,40,CE,NFO-OPT,NFO"
EQUITY_ROW = "3813889,14898,CENTRALBK-BE,CENTRAL BANK OF INDIA,0.0,,0.0,0.05,1,EQ,NSE,NSE"


def by_symbol(instruments: list[Instrument]) -> dict[str, Instrument]:
    return {item.tradingsymbol: item for item in instruments}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_sample_dump_reads_every_row(path: Path) -> None:
    instruments = read_dump(path)
    assert len(instruments) == data_lines(path) > 50
    assert len({item.instrument_token for item in instruments}) == len(instruments)


def test_option_row_fields() -> None:
    option = by_symbol(read_dump(SAMPLE_ALL))["BANKNIFTY18JAN23500CE"]
    assert option == OPTION


def test_equity_row_has_no_expiry_and_is_its_own_underlying() -> None:
    equity = by_symbol(read_dump(SAMPLE_NSE))["CENTRALBK-BE"]
    assert equity.expiry is None
    assert equity.name == "CENTRAL BANK OF INDIA"
    assert equity.underlying == "CENTRALBK-BE"
    assert (equity.instrument_type, equity.segment, equity.exchange) == ("EQ", "NSE", "NSE")


def test_option_underlyings_come_from_the_symbol_when_the_name_is_empty() -> None:
    options = [item for item in read_dump(SAMPLE_ALL) if item.is_option]
    assert {item.underlying for item in options} == {
        "BANKNIFTY",
        "ADANIPORTS",
        "INDIACEM",
        "INDIANB",
    }
    for item in options:
        assert item.expiry is not None
        assert item.tradingsymbol.startswith(item.underlying + item.expiry.strftime("%y"))


def test_columns_are_found_by_name_not_position() -> None:
    reordered = list(reversed(COLUMNS))
    values = dict(zip(COLUMNS, GOOD_ROW.split(","), strict=True))
    text = ",".join(reordered) + "\n" + ",".join(values[column] for column in reordered) + "\n"
    assert parse_dump(text) == parse_dump(f"{HEADER}\n{GOOD_ROW}\n")


def test_byte_order_mark_and_blank_lines_are_tolerated() -> None:
    assert parse_dump(f"\ufeff{HEADER}\n{GOOD_ROW}\n\n{EQUITY_ROW}\n") == parse_dump(
        f"{HEADER}\n{GOOD_ROW}\n{EQUITY_ROW}\n"
    )


def test_missing_column_is_an_error_naming_it() -> None:
    header = HEADER.replace(",strike", "")
    row = GOOD_ROW.replace(",23500.0", "")
    with pytest.raises(InstrumentDumpError, match=r"missing column.*strike") as caught:
        parse_dump(f"{header}\n{row}\n")
    assert caught.value.line == 1


@pytest.mark.parametrize(
    ("bad_row", "column"),
    [
        (GOOD_ROW.replace(",23500.0,", ",23x00,"), "strike"),
        (GOOD_ROW.replace("12073986", "12O73986"), "instrument_token"),
        (GOOD_ROW.replace(",40,", ",4.5,"), "lot_size"),
        (GOOD_ROW.replace("2018-01-25", "2018-13-25"), "expiry"),
        (GOOD_ROW.replace("2528.4", "nan"), "last_price"),
        (GOOD_ROW.replace("BANKNIFTY18JAN23500CE", ""), "tradingsymbol"),
    ],
)
def test_bad_value_is_an_error_naming_line_and_column(bad_row: str, column: str) -> None:
    text = f"{HEADER}\n{EQUITY_ROW}\n{bad_row}\n{EQUITY_ROW}\n"
    with pytest.raises(InstrumentDumpError) as caught:
        parse_dump(text)
    assert (caught.value.line, caught.value.column) == (3, column)
    assert f"line 3, column '{column}'" in str(caught.value)


@pytest.mark.parametrize("bad_row", [GOOD_ROW + ",extra", GOOD_ROW.rsplit(",", 1)[0]])
def test_wrong_field_count_is_an_error_naming_the_line(bad_row: str) -> None:
    with pytest.raises(InstrumentDumpError, match="line 2") as caught:
        parse_dump(f"{HEADER}\n{bad_row}\n")
    assert caught.value.line == 2


def test_empty_dump_is_an_error() -> None:
    with pytest.raises(InstrumentDumpError, match="empty"):
        parse_dump("")


def test_header_only_dump_is_empty() -> None:
    assert parse_dump(HEADER + "\n") == []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda path: path.name)
def test_written_dump_reads_back_identically(path: Path) -> None:
    instruments = read_dump(path)
    assert parse_dump(write_dump(instruments)) == instruments


def test_written_dump_keeps_the_header_and_empty_expiry() -> None:
    text = write_dump(parse_dump(f"{HEADER}\n{EQUITY_ROW}\n"))
    assert text == f"{HEADER}\n{EQUITY_ROW}\n"


def test_generated_universe_survives_a_round_trip() -> None:
    universe = generate_universe(date(2025, 11, 4), 24012.3, make_spec())
    assert parse_dump(write_dump(universe)) == universe
