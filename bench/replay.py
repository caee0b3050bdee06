"""The replay feed's figures: unpaced throughput against the simulated feed's, and pacing.

- ``sim_ticks_per_s``: the simulated account stream's chain ticks (full mode: priced,
  serialised with their books, offered through ``Outlet.publish_option`` to a running
  ``TickPublisher`` with its shared breaker), as ``bench/depth.py`` measures them. Each
  tick offered is also kept, as the recorder keeps it.
- those ticks are written as archive parts (``write_part``), and ``ReplayFeed`` replays
  them unpaced through the same kind of publisher: ``replay_ticks_per_s`` from the first
  offer to the last tick sent, ``replay_ratio`` = replay / simulated, target >= 0.8.
- ``pacing_p99_ms``: a session of irregular ticks replayed at 1x, each tick's lateness
  as a subscriber hears it against its due time ``start + (t - t0) / speed``; target
  <= 5 ms. The subscriber is a process of its own, as consumers are (the system's
  monotonic clock is the same in both): a thread of this process would wait for the
  replay's GIL to note when it heard a tick, and time its own wait as the replay's.
  ``pacing_offer_*``: the same ticks' lateness as the feed offered them to the publisher
  (the feed's own part of it; the rest is the publish, Redis and the subscriber waking).

redis-server is started on a free loopback port and stopped by this script. The last
line printed is one JSON object.

    python bench/replay.py [--options 200] [--seconds 3] [--pacing-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bars import keep_up, publishing  # noqa: E402
from bench.breaker import start_redis  # noqa: E402
from bench.depth import BAR_SECONDS, Clock, Feed, offer, walk  # noqa: E402
from bench.publish import CHANNELS, Recorder, drained, gone, running  # noqa: E402
from tickfleet.archive.layout import SCHEMA, market_date, partition_dir  # noqa: E402
from tickfleet.archive.parts import write_part  # noqa: E402
from tickfleet.assignment.plan import Assignment, Placement  # noqa: E402
from tickfleet.history.bars import BarBuilder  # noqa: E402
from tickfleet.runtime.clock import SystemClock  # noqa: E402
from tickfleet.runtime.heap import tune_for_streaming  # noqa: E402
from tickfleet.stream.feeds.replay.feed import ReplayFeed, ReplaySpec, Tokens  # noqa: E402
from tickfleet.stream.outlet import Outlet  # noqa: E402
from tickfleet.stream.publisher import TickPublisher  # noqa: E402
from tickfleet.stream.status import StreamStatus  # noqa: E402

TZ = ZoneInfo("Asia/Kolkata")
START = datetime(2026, 6, 9, 10, 0, tzinfo=TZ)
NS = 1_000_000_000
TARGET_RATIO = 0.8
TARGET_PACING_MS = 5.0


class Keeping(Outlet):
    """An outlet that also keeps every option tick offered, as the recorder would."""

    def __init__(self, publisher: TickPublisher, rows: list[tuple[int, bytes]]) -> None:
        super().__init__(publisher, CHANNELS, BarBuilder(BAR_SECONDS))
        self.rows = rows

    def publish_option(self, token: int, payload: bytes) -> None:
        super().publish_option(token, payload)
        self.rows.append((token, payload))


async def simulated(url: str, n_options: int, seconds: float) -> tuple[float, list[Any]]:
    """Ticks/s of the simulated feed at saturation, and its ticks as (token, payload)."""
    feed = Feed.of(n_options, START, depth=True, seed=7)
    clock = Clock(START, walk(600, START))
    rows: list[tuple[int, bytes]] = []
    recorder = Recorder()
    async with publishing(url, recorder) as (publisher, _):
        outlet = Keeping(publisher, rows)
        start, offered = gone(publisher, recorder), 0
        async with running(publisher):
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                offered += offer(feed, outlet, *clock.next())
                await keep_up(publisher)
            await drained(publisher, recorder, start + offered)
            elapsed = time.perf_counter() - began
    return offered / elapsed, rows


def archive(root: Path, rows: list[tuple[int, bytes]], gaps_ns: list[int]) -> list[int]:
    """``rows`` as one stream's recorded ticks, ``gaps_ns`` apart, in parts of 50k; their ts."""
    ts, at = [], int(START.timestamp() * NS)
    for gap in gaps_ns:
        at += gap
        ts.append(at)
    table = pa.table(
        {
            "ts_ns": ts,
            "stream": ["account:bench"] * len(rows),
            "seq": list(range(len(rows))),
            "kind": ["options"] * len(rows),
            "channel": [CHANNELS.options] * len(rows),
            "token": [t for t, _ in rows],
            "source": ["mock"] * len(rows),
            "payload": [p for _, p in rows],
        },
        schema=SCHEMA,
    )
    where = partition_dir(root, market_date(ts[0]), "NIFTY")
    for n, first in enumerate(range(0, len(rows), 50_000)):
        write_part(where / f"part-{n:05d}.parquet", table.slice(first, 50_000))
    return ts


class Stamping(Outlet):
    """An outlet that notes when each option tick was offered (monotonic)."""

    def __init__(self, publisher: TickPublisher) -> None:
        super().__init__(publisher, CHANNELS, BarBuilder(BAR_SECONDS))
        self.at: list[float] = []

    def publish_option(self, token: int, payload: bytes) -> None:
        self.at.append(time.monotonic())
        super().publish_option(token, payload)


@dataclass
class Heard:
    """A subscriber in a process of its own (``bench/subscriber.py``): when each tick of
    the options channel arrived (``time.monotonic``, the system's clock, as the replay's)."""

    url: str
    expect: int

    def __post_init__(self) -> None:
        self.at: list[float] = []
        script = Path(__file__).with_name("subscriber.py")
        args = [sys.executable, str(script), self.url, CHANNELS.options, str(self.expect)]
        self._process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        if self._process.stdout.readline().strip() != "ready":
            raise RuntimeError("the subscriber process did not subscribe")

    def join(self, timeout: float) -> None:
        out, _ = self._process.communicate(timeout=timeout)
        self.at = json.loads(out)


async def replay(
    url: str, root: Path, tokens: set[int], speed: float, heard: Heard | None
) -> tuple[ReplayFeed, list[float], float, float]:
    """Replay the archived day at ``speed``; the feed, its first offer and last send."""
    recorder = Recorder()
    async with publishing(url, recorder) as (publisher, fleet):
        # paced: each offer's instant noted; unpaced: nothing but the feed's own work
        outlet = (
            Stamping(publisher) if heard else Outlet(publisher, CHANNELS, BarBuilder(BAR_SECONDS))
        )
        # a stream of its own per replay: a finished one's position would end the next
        status = StreamStatus(f"account:bench-{root.name}", "bench", "bench")
        spec = ReplaySpec(root, START.date(), speed, None, None, TZ)
        clock = SystemClock()
        feed = ReplayFeed(spec, Tokens("options", "bench"), {"NIFTY": outlet}, fleet, status,
                          clock, lambda: True)  # fmt: skip
        placements = {t: Placement("bench", 0) for t in tokens}
        await feed.apply(Assignment(version=1, placements=placements))
        async with running(publisher):
            task = asyncio.create_task(feed.run())
            while status.last_tick_at is None:
                await asyncio.sleep(0.0005)
            began = time.perf_counter() - (clock.time() - status.last_tick_at)
            while status.replay_finished_at is None:
                await asyncio.sleep(0.001)
            while publisher.backlog:
                await asyncio.sleep(0.001)
            ended = time.perf_counter()
            if heard is not None:
                await asyncio.to_thread(heard.join, 60)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return feed, outlet.at if isinstance(outlet, Stamping) else [], began, ended


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    server = start_redis(workdir / "redis")
    try:
        sim_rate, rows = await simulated(server.url, args.options, args.seconds)
        tokens = {t for t, _ in rows}
        # unpaced: the simulated ticks, a chain tick a second apart as they were made
        per_chain = args.options
        gaps = [NS if i % per_chain == 0 else 1 for i in range(len(rows))]
        archive(workdir / "fast", rows, gaps)
        _, _, began, ended = await replay(server.url, workdir / "fast", tokens, 0, None)
        replay_rate = len(rows) / (ended - began)
        # paced at 1x: irregular gaps (0.1 to 50 ms) over about --pacing-seconds
        rng = np.random.default_rng(3)
        n = int(args.pacing_seconds / 0.01)
        paced = rows[:n]
        gaps = [int(g) for g in rng.uniform(0.0001, 0.02, len(paced)) * NS]
        ts = archive(workdir / "paced", paced, gaps)
        heard = Heard(server.url, len(paced))
        feed, offered, _, _ = await replay(server.url, workdir / "paced", tokens, 1, heard)
        pacer = feed._pacer
        late_ms = np.array(
            [(at - pacer.due(t)) * 1000 for at, t in zip(heard.at, ts, strict=False)]
        )
        offer_ms = np.array([(at - pacer.due(t)) * 1000 for at, t in zip(offered, ts, strict=True)])
    finally:
        server.stop()
    return {
        "sim_ticks_per_s": round(sim_rate),
        "replay_ticks_per_s": round(replay_rate),
        "replay_ratio": round(replay_rate / sim_rate, 3),
        "replay_ratio_target": TARGET_RATIO,
        "pacing_ticks": len(late_ms),
        "pacing_p50_ms": round(float(np.percentile(late_ms, 50)), 3),
        "pacing_p99_ms": round(float(np.percentile(late_ms, 99)), 3),
        "pacing_max_ms": round(float(late_ms.max()), 3),
        "pacing_p99_target_ms": TARGET_PACING_MS,
        "pacing_heard_all": len(late_ms) == len(paced),
        "pacing_offer_p50_ms": round(float(np.percentile(offer_ms, 50)), 3),
        "pacing_offer_p99_ms": round(float(np.percentile(offer_ms, 99)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--pacing-seconds", type=float, default=20.0)
    args = parser.parse_args()
    tune_for_streaming()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(measure(args, Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
