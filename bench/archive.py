"""The tick archive: what recording costs publishing, and what a tick costs on disk.

1. ``archive_overhead``. Option ticks of a simulated chain are serialised and offered
   to a running ``TickPublisher`` (shared breaker, fenced, on a real redis-server) as in
   ``bench/publish.py``, as fast as it drains. Two publishers, the same in all but the
   tap: one hands every batch to a running ``TickRecorder``, whose thread writes parts
   to a temporary folder every second, and the other records nothing. Rounds alternate
   which goes first. The figure is the median of the paired rounds' throughput lost
   (negative: within the noise). Target ≤ 3 %. A round with the recorder ends once it
   has written every tick the round published, so the writer's CPU is counted in its own
   round. The same rounds' CPU seconds a tick of this process (every thread) give
   ``archive_cpu_overhead``, which the machine's load moves much less than the wall rate.
2. ``bytes_per_tick``. A simulated session of full-mode option ticks, with greeks and
   five levels of depth a side, is made by ``MockOptionBook`` and serialised as the
   simulated feed serialises it. It is recorded by a ``TickRecorder`` (a part per
   simulated minute), then compacted by the upkeep. The figure is the compacted bytes on
   disk per tick; the parts' figure before compaction is printed beside it. Target ≤ 40.

Sections are functions returning their figures; ``main`` runs them and prints one JSON
object on the last line (a replay section adds its own figures there).

    python bench/archive.py [--rounds 10] [--seconds 1.5] [--options 200] [--minutes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.breaker import start_redis  # noqa: E402
from bench.publish import (  # noqa: E402
    CHANNELS,
    PAYLOADS,
    SPOT,
    TZ,
    Chain,
    Recorder,
    contracts,
    make_chains,
    publisher_rate,
    row_of,
    shared_breaker,
)
from tickfleet.archive.parts import parts_of, read_ticks  # noqa: E402
from tickfleet.archive.recorder import RecorderConfig, Route, TickRecorder  # noqa: E402
from tickfleet.archive.upkeep import keep_archive  # noqa: E402
from tickfleet.breaker import Breaker  # noqa: E402
from tickfleet.market.options import ChainSpec, MockOptionBook  # noqa: E402
from tickfleet.market.snapshot import MockUnderlyingSnapshot  # noqa: E402
from tickfleet.metrics.buffer import MetricsBuffer  # noqa: E402
from tickfleet.runtime.clock import ManualClock, SystemClock  # noqa: E402
from tickfleet.runtime.connections import fail_fast_async_client  # noqa: E402
from tickfleet.runtime.heap import tune_for_streaming  # noqa: E402
from tickfleet.stream.feeds.simulated.depth_json import FULL, ModeFields  # noqa: E402
from tickfleet.stream.feeds.simulated.options import option_tick  # noqa: E402
from tickfleet.stream.publisher import Fence, PublisherConfig, Tap, TickPublisher  # noqa: E402
from tickfleet.ticks.payloads import OptionPayload, Stamp  # noqa: E402

TARGET_OVERHEAD = 0.03
TARGET_BYTES_PER_TICK = 40.0
ROUTES = {CHANNELS.options: Route("NIFTY", "options")}
SESSION_DAY = date(2026, 6, 9)
COMPACT_LEVEL = 9


# --- archive_overhead ----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def publisher_with(
    url: str, metrics: Recorder, breaker: Breaker, tap: Tap | None
) -> AsyncIterator[TickPublisher]:
    """A publisher configured like a stream's (``bench.publish.publisher_for``), with a tap."""
    timeout = PublisherConfig().timeout_seconds
    fence = Fence(CHANNELS.fence("bench"), 1, lambda newer: None)
    async with fail_fast_async_client(url, timeout, read_timeout=False) as client:
        yield TickPublisher(
            client, "bench", metrics, PublisherConfig(), breaker, lambda: True, fence, tap
        )


async def archived_rate(
    publisher: TickPublisher,
    metrics: Recorder,
    recorder: TickRecorder | None,
    chains: Sequence[Chain],
    seconds: float,
) -> tuple[float, float]:
    """Ticks/s and CPU seconds a tick (this process, every thread) of one round.

    With a recorder, the round ends once the recorder has written every tick it heard:
    the writer's work is inside the round it belongs to, not spilled into the next."""
    cpu, began = time.process_time(), time.perf_counter()
    before = publisher.published
    await publisher_rate(publisher, metrics, chains, seconds)
    if recorder is not None:
        recorder.flush_soon()  # the round's last ticks now, not a flush period later
    while recorder is not None and recorder.written < publisher.published:
        await asyncio.sleep(0.001)
    ticks = publisher.published - before
    return ticks / (time.perf_counter() - began), (time.process_time() - cpu) / ticks


async def overhead_rounds(
    url: str, folder: Path, chains: Sequence[Chain], seconds: float, rounds: int
) -> dict[str, Any]:
    """Paired rounds: ticks/s with the recorder against without, alternating the order."""
    plain_metrics, tapped_metrics = Recorder(), Recorder()
    recorder = TickRecorder(
        "account:bench", ROUTES, RecorderConfig(folder, flush_seconds=0.25), SystemClock(),
        MetricsBuffer(), lambda: "mock",
    ).start()  # fmt: skip
    runs: dict[str, list[tuple[float, float]]] = {"archived": [], "plain": []}
    try:
        async with (
            shared_breaker(url) as breaker,
            publisher_with(url, plain_metrics, breaker, None) as plain,
            publisher_with(url, tapped_metrics, breaker, recorder.record) as archived,
        ):
            variants = {
                "plain": lambda: archived_rate(plain, plain_metrics, None, chains, seconds),
                "archived": lambda: archived_rate(
                    archived, tapped_metrics, recorder, chains, seconds
                ),
            }
            for warm_up in variants.values():
                await warm_up()
            order = list(variants)
            for r in range(rounds):
                for name in order[r % 2 :] + order[: r % 2]:
                    runs[name].append(await variants[name]())
    finally:
        await recorder.aclose()
    pairs = list(zip(runs["archived"], runs["plain"], strict=True))
    lost = [1.0 - a[0] / p[0] for a, p in pairs]
    cpu = [a[1] / p[1] - 1.0 for a, p in pairs]
    return {
        "archive_overhead": round(statistics.median(lost), 4),
        "archive_overhead_rounds": [round(x, 3) for x in lost],
        "archive_cpu_overhead": round(statistics.median(cpu), 4),
        "archive_cpu_overhead_rounds": [round(x, 3) for x in cpu],
        "archived_ticks_per_s": round(statistics.median(r for r, _ in runs["archived"])),
        "plain_ticks_per_s": round(statistics.median(r for r, _ in runs["plain"])),
        "cpu_us_per_tick_plain": round(1e6 * statistics.median(c for _, c in runs["plain"]), 2),
        "cpu_us_per_tick_archived": round(
            1e6 * statistics.median(c for _, c in runs["archived"]), 2
        ),
        "archived_written": recorder.written,
        "archived_published": archived.published,
        "archive_dropped": sum(recorder.dropped.values()),
    }


def measure_overhead(seconds: float, rounds: int, options: int) -> dict[str, Any]:
    chains = make_chains(options, 40)
    with tempfile.TemporaryDirectory(prefix="tickfleet-bench-archive-") as tmp:
        server = start_redis(Path(tmp) / "redis")
        try:
            return asyncio.run(
                overhead_rounds(server.url, Path(tmp) / "archive", chains, seconds, rounds)
            )
        finally:
            server.stop()


# --- bytes_per_tick --------------------------------------------------------------------------


def session_ticks(options: int, minutes: int, seed: int = 7) -> list[list[tuple[int, bytes]]]:
    """A simulated session: a chain tick a second for ``minutes``, every option in FULL
    mode (greeks and depth), as (token, payload) per chain tick."""
    start = datetime(SESSION_DAY.year, SESSION_DAY.month, SESSION_DAY.day, 10, 0, tzinfo=TZ)
    book = MockOptionBook(ChainSpec(), max_size=options)
    held = contracts(options, SESSION_DAY)
    book.ensure(held)
    payloads = {c.instrument_token: OptionPayload(row_of(c)) for c in held}
    PAYLOADS.update(payloads)
    fields, rng, price = ModeFields(), np.random.default_rng(seed), SPOT
    chains = []
    for k in range(minutes * 60):
        price *= 1.0 + 0.0002 * float(rng.standard_normal())
        at = start + timedelta(seconds=k)
        index = MockUnderlyingSnapshot(
            version=k + 1, symbol="NIFTY 50", price=price, open=SPOT, high=max(price, SPOT),
            low=min(price, SPOT), close=SPOT, volume=0, ts=at.timestamp(),
        )  # fmt: skip
        states = book.tick(index, at, rng, depth=True)
        stamp = Stamp.of(states[0].timestamp, TZ)
        assert book.last_depth is not None
        columns = fields.columns(book.last_depth, [FULL] * len(states))
        chains.append(
            [
                (
                    s.instrument_token,
                    option_tick(payloads[s.instrument_token], stamp, s, b, buy, sell),
                )
                for s, b, buy, sell in zip(states, *columns, strict=True)
            ]
        )
    return chains


def measure_bytes(options: int, minutes: int) -> dict[str, Any]:
    """Bytes on disk per tick: as the streams write it, then compacted."""
    chains = session_ticks(options, minutes)
    ticks = sum(len(c) for c in chains)
    payload_bytes = sum(len(p) for c in chains for _, p in c)
    with tempfile.TemporaryDirectory(prefix="tickfleet-bench-archive-") as tmp:
        root = Path(tmp)
        clock = ManualClock(datetime(2026, 6, 9, 10, 0, tzinfo=TZ).timestamp())
        recorder = TickRecorder(
            "account:bench", ROUTES, RecorderConfig(root), clock, MetricsBuffer(), lambda: "mock"
        )
        channel, latest = CHANNELS.options, CHANNELS.latest_options
        for k, chain in enumerate(chains):
            recorder.record([(channel, latest, str(t), p, 0.0) for t, p in chain])
            clock.advance(1.0)
            if k % 60 == 59:
                recorder.flush()  # a part a minute, as the default flush period writes them
        recorder.flush()
        written = _size(root)
        before = read_ticks(root, SESSION_DAY)
        began = time.perf_counter()
        keep_archive(root, SESSION_DAY + timedelta(days=1), 30, COMPACT_LEVEL, MetricsBuffer())
        compact_seconds = time.perf_counter() - began
        compacted = _size(root)
        assert read_ticks(root, SESSION_DAY).equals(before), "compaction changed the ticks"
        assert before.num_rows == ticks
        parts = len(list(parts_of(root, SESSION_DAY)))
    return {
        "bytes_per_tick": round(compacted / ticks, 2),
        "bytes_per_tick_written": round(written / ticks, 2),
        "payload_bytes_per_tick": round(payload_bytes / ticks, 1),
        "session_ticks": ticks,
        "compacted_parts": parts,
        "compact_us_per_tick": round(1e6 * compact_seconds / ticks, 2),
    }


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.parquet"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--options", type=int, default=200, help="options in the chain")
    parser.add_argument("--minutes", type=int, default=10, help="the simulated session's")
    args = parser.parse_args(argv)
    tune_for_streaming()
    figures: dict[str, Any] = {}
    figures.update(measure_overhead(args.seconds, args.rounds, 400))
    print(f"archive overhead: {figures['archive_overhead']:.2%} (target ≤ {TARGET_OVERHEAD:.0%})")
    figures.update(measure_bytes(args.options, args.minutes))
    print(f"bytes per tick: {figures['bytes_per_tick']} (target ≤ {TARGET_BYTES_PER_TICK:.0f})")
    figures["archive_overhead_met"] = figures["archive_overhead"] <= TARGET_OVERHEAD
    figures["bytes_per_tick_met"] = figures["bytes_per_tick"] <= TARGET_BYTES_PER_TICK
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
