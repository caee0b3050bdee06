"""Read and write the Kite Connect instruments dump (CSV).

Columns are found by header name, so a reordered dump still reads; any missing column
or unreadable value rejects the dump with its line and column.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from tickfleet.instruments.errors import InstrumentDumpError
from tickfleet.instruments.model import Instrument, derive_underlying

COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)


class _RowReader:
    """Typed access to one CSV row; every failure names the line and the column."""

    def __init__(self, row: dict[str, str], line: int) -> None:
        self._row = row
        self.line = line

    def _raw(self, column: str) -> str:
        return self._row[column].strip()

    def _fail(self, column: str, problem: str) -> InstrumentDumpError:
        return InstrumentDumpError(self.line, column, f"{problem} ({self._row[column]!r})")

    def text(self, column: str, *, required: bool = False) -> str:
        value = self._raw(column)
        if required and not value:
            raise self._fail(column, "must not be empty")
        return value

    def integer(self, column: str, *, required: bool = False) -> int:
        value = self._raw(column)
        if not value and not required:
            return 0
        try:
            return int(value)
        except ValueError:
            raise self._fail(column, "is not an integer") from None

    def number(self, column: str) -> float:
        value = self._raw(column)
        if not value:
            return 0.0
        try:
            number = float(value)
        except ValueError:
            raise self._fail(column, "is not a number") from None
        if not math.isfinite(number):
            raise self._fail(column, "is not a finite number")
        return number

    def day(self, column: str) -> date | None:
        value = self._raw(column)
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self._fail(column, "is not a YYYY-MM-DD date") from None


def _instrument(reader: _RowReader) -> Instrument:
    tradingsymbol = reader.text("tradingsymbol", required=True)
    name = reader.text("name")
    instrument_type = reader.text("instrument_type", required=True)
    segment = reader.text("segment", required=True)
    return Instrument(
        instrument_token=reader.integer("instrument_token", required=True),
        exchange_token=reader.integer("exchange_token", required=True),
        tradingsymbol=tradingsymbol,
        name=name,
        underlying=derive_underlying(tradingsymbol, name, segment, instrument_type),
        last_price=reader.number("last_price"),
        expiry=reader.day("expiry"),
        strike=reader.number("strike"),
        tick_size=reader.number("tick_size"),
        lot_size=reader.integer("lot_size"),
        instrument_type=instrument_type,
        segment=segment,
        exchange=reader.text("exchange", required=True),
    )


def _check_header(fieldnames: list[str]) -> None:
    if not fieldnames:
        raise InstrumentDumpError(1, None, "the dump is empty (no header line)")
    missing = [column for column in COLUMNS if column not in fieldnames]
    if missing:
        raise InstrumentDumpError(1, None, f"missing column(s): {', '.join(missing)}")


def _check_shape(row: dict[str | None, str | list[str] | None], line: int) -> dict[str, str]:
    """The row as column → text, or an error if its field count differs from the header's."""
    columns = len(row) - (None in row)
    if None in row:
        raise InstrumentDumpError(line, None, f"more fields than the {columns} columns")
    if any(value is None for value in row.values()):
        raise InstrumentDumpError(line, None, f"fewer fields than the {columns} columns")
    return {str(key): str(value) for key, value in row.items()}


def parse_dump(text: str) -> list[Instrument]:
    """Every instrument of a dump, in file order."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    header = [name.strip() for name in reader.fieldnames or []]
    _check_header(header)
    reader.fieldnames = header
    instruments: list[Instrument] = []
    for raw in reader:
        row = _check_shape(dict(raw), reader.line_num)
        instruments.append(_instrument(_RowReader(row, reader.line_num)))
    return instruments


def read_dump(path: Path) -> list[Instrument]:
    return parse_dump(path.read_text(encoding="utf-8"))


def _fields(instrument: Instrument) -> list[str | int | float]:
    return [
        instrument.instrument_token,
        instrument.exchange_token,
        instrument.tradingsymbol,
        instrument.name,
        instrument.last_price,
        instrument.expiry.isoformat() if instrument.expiry else "",
        instrument.strike,
        instrument.tick_size,
        instrument.lot_size,
        instrument.instrument_type,
        instrument.segment,
        instrument.exchange,
    ]


def write_dump(instruments: Iterable[Instrument]) -> str:
    """The dump Kite would serve for ``instruments`` (``underlying`` is re-derived on read)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_fields(instrument) for instrument in instruments)
    return buffer.getvalue()
