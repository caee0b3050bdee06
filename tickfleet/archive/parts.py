"""Part files: written whole under a temporary name and renamed, read back in publish order.

A reader lists only ``*.parquet``; a part is renamed to that name once it is complete and
flushed, so no reader (nor a compaction) ever sees half a file, and a process killed
mid-write leaves at most a ``.tmp`` file, never a damaged part.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Collection, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tickfleet.archive.layout import (
    COMPRESSION,
    DICTIONARY_COLUMNS,
    ORDER,
    PART_SUFFIX,
    SCHEMA,
    STATISTICS_COLUMNS,
    day_dir,
)

TMP_SUFFIX = ".tmp"


def write_part(path: Path, table: pa.Table, row_group_size: int = 1 << 20) -> None:
    """Write ``table`` (``SCHEMA``) as the complete part ``path``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        with tmp.open("wb") as sink:
            pq.write_table(
                table.cast(SCHEMA), sink, compression=COMPRESSION, row_group_size=row_group_size,
                use_dictionary=DICTIONARY_COLUMNS, write_statistics=STATISTICS_COLUMNS,
            )  # fmt: skip
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def parts_of(root: Path, date: dt.date, underlying: str | None = None) -> Iterator[Path]:
    """The complete parts of a market date (one underlying's, or all), in name order."""
    day = day_dir(root, date)
    partitions = f"underlying={underlying.upper()}" if underlying else "*"
    yield from sorted(day.glob(f"{partitions}/*{PART_SUFFIX}"))


def read_ticks(
    root: Path,
    date: dt.date,
    underlying: str | None = None,
    tokens: Collection[int] | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
) -> pa.Table:
    """A market date's archived ticks, filtered, in publish order (``SCHEMA`` columns)."""
    tables = [_read(path, tokens, start_ns, end_ns) for path in parts_of(root, date, underlying)]
    if not tables:
        return SCHEMA.empty_table()
    return pa.concat_tables(tables).sort_by(ORDER)


def _read(
    path: Path, tokens: Collection[int] | None, start_ns: int | None, end_ns: int | None
) -> pa.Table:
    table = pq.read_table(path, schema=SCHEMA)
    mask = None
    if tokens is not None:
        mask = pc.is_in(table["token"], value_set=pa.array(sorted(tokens), pa.int64()))
    for column, op, bound in (("ts_ns", pc.greater_equal, start_ns), ("ts_ns", pc.less, end_ns)):
        if bound is not None:
            cond = op(table[column], bound)
            mask = cond if mask is None else pc.and_(mask, cond)
    return table if mask is None else table.filter(mask)
