"""Beat runs the archive's upkeep on the maintenance queue: a real beat and control worker
compact the fleet's yesterday (by the fleet's clock, whatever today is) and remove a day
past the retention, today's parts left to their writers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pyarrow as pa
import pytest

from tests.conftest import Fleet
from tests.support.instants import FLEET_NOW
from tests.support.polling import wait_until
from tests.support.seed import init_database
from tickfleet.archive.layout import SCHEMA, day_dir, partition_dir
from tickfleet.archive.parts import parts_of, read_ticks, write_part
from tickfleet.archive.upkeep import COMPACTED_PREFIX
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(90)

TODAY = FLEET_NOW.date()


def part(ts_ns: int, n: int) -> pa.Table:
    return pa.table(
        {
            "ts_ns": [ts_ns + i for i in range(n)],
            "stream": ["underlying:NIFTY"] * n,
            "seq": list(range(n)),
            "kind": ["underlying"] * n,
            "channel": ["ticker:nifty:underlying"] * n,
            "token": [256265] * n,
            "source": ["mock"] * n,
            "payload": [b'{"n":%d}' % i for i in range(n)],
        },
        schema=SCHEMA,
    )


def test_beat_compacts_yesterday_and_applies_the_retention(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(archive=True, archive_compact_seconds=1.0, archive_retention_days=3)
    init_database(settings)
    root = settings.effective_archive_dir
    yesterday, old = TODAY - timedelta(days=1), TODAY - timedelta(days=4)
    base = int(FLEET_NOW.timestamp() * 1e9)
    for day in (yesterday, TODAY, old):
        for k in range(3):
            path = partition_dir(root, day, "NIFTY") / f"p-{k}.parquet"
            write_part(path, part(base + k * 1000, 10))
    before = read_ticks(root, yesterday)
    fleet = fleet_factory(settings)
    with fleet.starting():
        fleet.control_worker()
        fleet.beat()

    def compacted() -> bool:
        names = [p.name for p in parts_of(root, yesterday)]
        return len(names) == 1 and names[0].startswith(COMPACTED_PREFIX)

    wait_until(compacted, 45, 0.2, "yesterday compacted by the beat task")
    wait_until(lambda: not day_dir(root, old).exists(), 10, 0.2, "the old day removed")
    assert read_ticks(root, yesterday).equals(before)
    assert len(list(parts_of(root, TODAY))) == 3
