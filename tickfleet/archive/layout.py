"""What an archived tick is and where it lies: the Parquet schema and the hive layout.

One row per published tick, the payload kept as the exact bytes consumers heard, so an
export or a replay gives them back unchanged. The columns beside it are what queries and
the replay select and order by. Files lie under
``<root>/date=YYYY-MM-DD/underlying=<U>/<part>.parquet``, the date being the market's
(Asia/Kolkata) date of the tick: DuckDB, Polars and pandas read the layout as it is,
``date`` and ``underlying`` as columns.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa

SCHEMA = pa.schema(
    [
        ("ts_ns", pa.int64()),  # when the stream published it: epoch nanoseconds
        ("stream", pa.string()),  # the stream that published it
        ("seq", pa.int64()),  # its place in that stream's publish order (from 0, per process)
        ("kind", pa.string()),  # "options" or "underlying": the channel it went out on
        ("channel", pa.string()),  # the channel's name as published
        ("token", pa.int64()),  # the instrument token (the index's for the underlying)
        ("source", pa.string()),  # "live", "mock" or "replay"
        ("payload", pa.binary()),  # the published bytes, unchanged
    ]
)
"""An archived tick. Publish order is (ts_ns, stream, seq)."""

ORDER = [("ts_ns", "ascending"), ("stream", "ascending"), ("seq", "ascending")]
PART_SUFFIX = ".parquet"
COMPRESSION = "zstd"
# Written with a dictionary: the few values a part repeats. A payload is unique, so a
# dictionary of them only costs the writer (a fifth of its time, for nothing on disk).
DICTIONARY_COLUMNS = ["stream", "kind", "channel", "source"]
# With statistics: the columns a query prunes row groups by. A payload's min and max
# would be two payloads copied into every footer.
STATISTICS_COLUMNS = ["ts_ns", "seq", "token"]


def market_date(ts_ns: int, tz: str = "Asia/Kolkata") -> dt.date:
    """The market's date of a tick published at ``ts_ns``."""
    return dt.datetime.fromtimestamp(ts_ns / 1e9, ZoneInfo(tz)).date()


def day_dir(root: Path, date: dt.date) -> Path:
    return root / f"date={date.isoformat()}"


def partition_dir(root: Path, date: dt.date, underlying: str) -> Path:
    """Where one underlying's ticks of one market date lie."""
    return day_dir(root, date) / f"underlying={underlying.upper()}"
