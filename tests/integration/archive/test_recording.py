"""A simulated fleet recorded: real API, control worker, stream worker and beat on a real
Redis, the archive read back from disk.

- every tick a subscriber heard, on both channels, is in the archive in the order it was
  heard, and ``tickfleet ticks export`` gives back the same bytes;
- a stream worker killed with SIGKILL loses at most one flush period, and every file it
  left reads;
- a full disk (a small tmpfs; a read-only folder where this test may not mount one) is
  counted and named in ``/health`` while publishing goes on at its pace.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest

from tests.conftest import Fleet
from tests.support.instants import FLEET_NOW
from tests.support.polling import wait_until
from tests.support.processes import BIN, run_command
from tests.support.seed import near_money, seed_universe
from tests.support.ticks import Received, TickCollector
from tests.support.timing import FAST_FLEET
from tickfleet.archive.parts import read_ticks
from tickfleet.archive.recorder import DISK_FULL, NOT_WRITABLE
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(150)

TICK = 0.3
FLUSH = 1.0
DAY = FLEET_NOW.date()


@contextmanager
def recorded_fleet(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    **overrides: Any,
) -> Iterator[tuple[Settings, Fleet, httpx.Client, TickCollector]]:
    """A simulated fleet archiving every ``FLUSH`` seconds, four NIFTY options subscribed,
    and a subscriber on both of NIFTY's channels."""
    settings = make_settings(
        feed="mock", archive=True, mock_tick_interval_seconds=TICK, archive_flush_seconds=FLUSH,
        **{**FAST_FLEET, **overrides},
    )  # fmt: skip
    options = seed_universe(settings, with_expired=False)
    chosen = near_money(options, "NIFTY", settings.mock_underlying_price)
    fleet = fleet_factory(settings)
    url = fleet.everything(streams=2)
    collector = TickCollector(settings.redis_url).start()
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            body = [{"instrument_token": o.instrument_token} for o in chosen]
            assert api.post("/subscriptions", json=body).status_code == 200
            collector.wait_for(lambda c: len(c.options()) >= 20, 60, "option ticks")
            yield settings, fleet, api, collector
    finally:
        collector.stop()


def archived(root: Path) -> dict[str, list[bytes]]:
    """The archive's payloads of the day, per channel, in publish order."""
    table = read_ticks(root, DAY)
    out: dict[str, list[bytes]] = {}
    for channel, payload in zip(
        table["channel"].to_pylist(), table["payload"].to_pylist(), strict=True
    ):
        out.setdefault(channel, []).append(payload)
    return out


def heard_by_channel(heard: list[Received]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for r in heard:
        out.setdefault(r.channel, []).append(r.raw)
    return out


def ticks_command(settings: Settings, *args: str) -> bytes:
    """``tickfleet ticks <args> --date DAY`` as an operator runs it; its standard output."""
    argv = [str(BIN / "tickfleet"), "ticks", *args, "--date", DAY.isoformat()]
    env = {**os.environ, **settings.to_env()}
    done = run_command(argv, env, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def contains_run(whole: list[bytes], run: list[bytes]) -> bool:
    """``run`` appears in ``whole`` as one stretch, in its order."""
    if not run:
        return True
    starts = [i for i, p in enumerate(whole) if p == run[0]]
    return any(whole[i : i + len(run)] == run for i in starts)


def test_every_tick_heard_is_archived_and_exported_as_published(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    with recorded_fleet(make_settings, fleet_factory) as (settings, fleet, _, collector):
        time.sleep(3)
        collector.stop()
        heard = heard_by_channel(collector.snapshot())
        root = settings.effective_archive_dir
        assert set(heard) == {collector.channels.options, collector.channels.underlying}

        def all_archived() -> bool:
            found = archived(root)
            return all(contains_run(found.get(c, []), run) for c, run in heard.items())

        wait_until(all_archived, 4 * FLUSH + 5, 0.2, "every heard tick in the archive")
        fleet.stop()  # a clean stop writes what the streams held: the archive stays put now
        exported = ticks_command(settings, "export", "--format", "jsonl").splitlines()
        table = read_ticks(root, DAY)
        assert exported == table["payload"].to_pylist()
        stats = orjson.loads(ticks_command(settings, "stats"))
        kinds = Counter(table["kind"].to_pylist())
        assert stats["NIFTY"]["ticks"] == table.num_rows
        assert stats["NIFTY"]["by_kind"] == dict(kinds)
        assert stats["NIFTY"]["sources"] == {"mock": table.num_rows}
        heard_all = [p for run in heard.values() for p in run]
        assert set(heard_all) <= set(exported)
        sources = set(table["source"].to_pylist())
        assert sources == {"mock"}
        tokens = dict(zip(table["kind"].to_pylist(), table["token"].to_pylist(), strict=True))
        assert tokens["underlying"] == settings.underlying("NIFTY").index_token


def test_a_killed_stream_worker_loses_at_most_one_flush_period(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    with recorded_fleet(make_settings, fleet_factory) as (settings, fleet, _, collector):
        time.sleep(2.5)
        worker = next(p for p in fleet.processes if p.name == "stream")
        killed_at = time.time()
        worker.kill()
        collector.stop()
        heard = collector.snapshot()
    root = settings.effective_archive_dir
    for part in root.rglob("*.parquet"):
        pq.read_table(part)  # every part the killed process left reads whole
    kept = {p for run in archived(root).values() for p in run}
    lost = [r for r in heard if r.raw not in kept]
    assert len(kept) > 0
    # lost: only ticks published within the last flush period (plus a write's time)
    assert all(r.at > killed_at - FLUSH - 0.5 for r in lost), [
        round(killed_at - r.at, 2) for r in lost
    ]


@contextmanager
def full_disk(path: Path) -> Iterator[tuple[Path, str, Path | None]]:
    """A folder whose writes fail: a 256 KiB tmpfs filled up (the folder, the reason, the
    filler to delete to free it); where mounting is refused, a read-only folder instead."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(path)],
        capture_output=True, check=False,
    ).returncode == 0  # fmt: skip
    try:
        if mounted:
            filler = path / "filler"
            with filler.open("wb", buffering=0) as out:
                try:
                    while True:
                        out.write(b"\0" * 4096)
                except OSError:
                    pass
            yield path, DISK_FULL, filler
        else:
            path.chmod(0o555)
            yield path, NOT_WRITABLE, None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)
        else:
            path.chmod(0o755)


def test_a_full_disk_is_counted_and_named_while_publishing_goes_on(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    tmp_path: Path,
) -> None:
    with (
        full_disk(tmp_path / "full") as (root, reason, filler),
        recorded_fleet(make_settings, fleet_factory, archive_dir=root) as (_, _, api, ticks),
    ):
        before = len(ticks.snapshot(since=time.time() - 2))

        def named() -> dict[str, Any] | None:
            doc = api.get("/health").json()
            return doc if any(reason in p and str(root) in p for p in doc["problems"]) else None

        wait_until(named, 15, 0.3, f"/health naming the archive's {reason}")
        doc = named()
        assert doc is not None and doc["status"] == "degraded"
        failing = [a for a in doc["archive"].values() if a["failing"]]
        assert failing and all(a["dropped"].get(reason, 0) > 0 for a in failing)
        wait_until(
            lambda: f'archive_dropped_total{{reason="{reason}"}}' in api.get("/metrics").text,
            10, 0.3, "the drops counted",
        )  # fmt: skip
        # publishing goes on at its pace: ticks heard in the last 2 s against before
        now = time.time()
        time.sleep(2)
        after = len(ticks.snapshot(since=now))
        assert after >= 0.8 * before > 0
        if filler is not None:  # room again: the archive writes again, /health clears
            filler.unlink()
            wait_until(lambda: named() is None, 15, 0.3, "the archive writing again")
