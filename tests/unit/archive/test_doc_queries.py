"""The manual's DuckDB, Polars and pandas queries (``docs/archive.md``), run as printed
against an archive the recorder wrote and the upkeep compacted, and checked against
``read_ticks``: the files open as they are."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.instants import IST
from tests.support.manual import DOCS
from tickfleet.archive.parts import read_ticks
from tickfleet.archive.recorder import RecorderConfig, Route, TickRecorder
from tickfleet.archive.upkeep import keep_archive
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import ManualClock
from tickfleet.stream.publisher import PendingTick
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(60)

DAY = date(2026, 6, 9)  # compacted: the recorder's clock moves on to the next day
NIFTY = Channels.for_underlying("ticker", "NIFTY")
BANK = Channels.for_underlying("ticker", "BANKNIFTY")
TOKEN = 1001


def queries() -> dict[str, str]:
    """Each fenced ```python <library>``` block of the archive page."""
    text = (DOCS / "archive.md").read_text()
    return {m[1]: m[2] for m in re.finditer(r"```python (\w+)\n(.*?)```", text, re.S)}


def tick(channels: Channels, token: int, price: float, field: str | None = None) -> PendingTick:
    payload = json.dumps({"token": token, "last_price": price}).encode()
    return PendingTick(channels.options, channels.latest_options, field or str(token), payload, 0)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """From 10:55 to 11:35 on DAY, every 30 s: three NIFTY options and one BANKNIFTY
    option; part written every 5 minutes, the day compacted the next day."""
    root = tmp_path_factory.mktemp("archive")
    clock = ManualClock(datetime(2026, 6, 9, 10, 55, tzinfo=IST).timestamp())
    routes = {NIFTY.options: Route("NIFTY", "options"), BANK.options: Route("BANKNIFTY", "options")}
    rec = TickRecorder(
        "account:a", routes, RecorderConfig(root), clock, MetricsBuffer(), lambda: "mock"
    )
    for step in range(80):
        price = 100 + step
        rec.record([tick(NIFTY, TOKEN, price), tick(NIFTY, 1002, price), tick(NIFTY, 1003, price)])
        rec.record([tick(BANK, 2001, price)])
        if step % 10 == 9:
            rec.flush()
        clock.advance(30)
    rec.flush()
    keep_archive(root, DAY + timedelta(days=1), 30, 9, MetricsBuffer())
    assert sorted(p.name[:2] for p in root.rglob("*.parquet")) == ["c-", "c-"]  # one each
    return root


def run(library: str, root: Path) -> dict[str, Any]:
    scope: dict[str, Any] = {"ARCHIVE": str(root), "DAY": DAY.isoformat(), "TOKEN": TOKEN}
    exec(queries()[library], scope)  # the manual's own code
    return scope


def test_the_page_has_one_query_per_library() -> None:
    assert sorted(queries()) == ["duckdb", "pandas", "polars"]


def test_duckdb_a_tokens_ticks_between_two_times(archive: Path) -> None:
    ticks = run("duckdb", archive)["ticks"]
    start = datetime(2026, 6, 9, 11, 0, tzinfo=IST).timestamp() * 1e9
    end = datetime(2026, 6, 9, 11, 30, tzinfo=IST).timestamp() * 1e9
    expected = read_ticks(archive, DAY, tokens=[TOKEN], start_ns=int(start), end_ns=int(end))
    assert len(ticks) == expected.num_rows == 60  # 30 minutes, a tick every 30 s
    assert [t[2] for t in ticks] == [
        json.loads(p)["last_price"] for p in expected["payload"].to_pylist()
    ]


def test_polars_a_days_ticks_per_minute(archive: Path) -> None:
    frame = run("polars", archive)["per_minute"]
    table = read_ticks(archive, DAY)
    expected = Counter(
        (channel.split(":")[1].upper(), datetime.fromtimestamp(ts // 10**9 // 60 * 60, IST))
        for channel, ts in zip(
            table["channel"].to_pylist(), table["ts_ns"].to_pylist(), strict=True
        )
    )
    found = {(u, m): n for u, m, n in frame.iter_rows()}
    assert sum(found.values()) == table.num_rows == 320
    assert found == dict(expected)


def test_pandas_sources_and_last_prices(archive: Path) -> None:
    scope = run("pandas", archive)
    assert scope["by_source"].to_dict() == {("mock", "options"): 320}
    assert scope["last"].to_dict() == {1001: 179, 1002: 179, 1003: 179, 2001: 179}
