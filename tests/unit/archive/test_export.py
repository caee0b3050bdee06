"""A day read back out: payloads byte for byte in publish order, filtered by underlying,
token and market time; and its summary (counts, sources, first and last, gaps)."""

from __future__ import annotations

import csv
import io
from datetime import date, time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.support.instants import ist
from tickfleet.archive.export import day_stats, export_ticks
from tickfleet.archive.layout import SCHEMA, partition_dir
from tickfleet.archive.parts import write_part

pytestmark = pytest.mark.timeout(20)

DAY = date(2026, 6, 10)


def write(root: Path, underlying: str, name: str, rows: list[tuple[int, int, int, str]]) -> None:
    """Rows of (minute after 10:00, second, token, source), seq in the given order."""
    base = int(ist(2026, 6, 10, 10, 0).timestamp() * 1e9)
    ts = [base + (m * 60 + s) * 1_000_000_000 for m, s, _, _ in rows]
    table = pa.table(
        {
            "ts_ns": ts,
            "stream": ["s"] * len(rows),
            "seq": [int(name) * 100 + i for i in range(len(rows))],
            "kind": ["options"] * len(rows),
            "channel": [f"ticker:{underlying.lower()}:options"] * len(rows),
            "token": [t for _, _, t, _ in rows],
            "source": [src for *_, src in rows],
            "payload": [b'{"t":%d,"at":%d}' % (t, m * 60 + s) for m, s, t, _ in rows],
        },
        schema=SCHEMA,
    )
    write_part(partition_dir(root, DAY, underlying) / f"p-{name}.parquet", table)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    # written out of order on purpose: the later part first
    write(tmp_path, "NIFTY", "2", [(5, 0, 1, "mock"), (6, 0, 2, "mock")])
    write(tmp_path, "NIFTY", "1", [(0, 0, 1, "live"), (0, 30, 2, "live"), (1, 0, 1, "live")])
    write(tmp_path, "SENSEX", "3", [(0, 10, 7, "mock")])
    return tmp_path


def export(root: Path, fmt: str = "jsonl", **selection: object) -> bytes:
    out = io.BytesIO()
    export_ticks(root, DAY, out, fmt, **selection)  # type: ignore[arg-type]
    return out.getvalue()


def test_jsonl_is_every_payload_in_publish_order(root: Path) -> None:
    assert export(root).splitlines() == [
        b'{"t":1,"at":0}', b'{"t":7,"at":10}', b'{"t":2,"at":30}', b'{"t":1,"at":60}',
        b'{"t":1,"at":300}', b'{"t":2,"at":360}',
    ]  # fmt: skip


def test_selection_by_underlying_token_and_market_time(root: Path) -> None:
    assert export(root, underlying="NIFTY", tokens=[1]).splitlines() == [
        b'{"t":1,"at":0}', b'{"t":1,"at":60}', b'{"t":1,"at":300}',
    ]  # fmt: skip
    # --from inclusive, --to excluded
    assert export(root, start=time(10, 0, 30), end=time(10, 5)).splitlines() == [
        b'{"t":2,"at":30}', b'{"t":1,"at":60}',
    ]  # fmt: skip


def test_csv_and_parquet_carry_the_same_payloads(root: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(export(root, "csv").decode())))
    assert [r["payload"].encode() for r in rows] == export(root).splitlines()
    assert rows[0]["time"] == "2026-06-10T10:00:00.000000+05:30"
    assert rows[1]["token"] == "7" and rows[1]["source"] == "mock"
    table = pq.read_table(io.BytesIO(export(root, "parquet")))
    assert table.schema.equals(SCHEMA)
    assert table["payload"].to_pylist() == export(root).splitlines()


def test_stats_count_sources_and_find_gaps(root: Path) -> None:
    days = day_stats(root, DAY, gap_seconds=120)
    assert sorted(days) == ["NIFTY", "SENSEX"]
    nifty = days["NIFTY"]
    assert nifty.ticks == 5
    assert nifty.sources == {"live": 3, "mock": 2}
    assert nifty.by_kind == {"options": 5}
    assert nifty.first == "2026-06-10T10:00:00.000000+05:30"
    assert nifty.last == "2026-06-10T10:06:00.000000+05:30"
    assert nifty.gaps == [
        {
            "from": "2026-06-10T10:01:00.000000+05:30",
            "to": "2026-06-10T10:05:00.000000+05:30",
            "seconds": 240.0,
        }
    ]
    assert days["SENSEX"].gaps == []
    assert day_stats(root, date(2026, 6, 11)) == {}
