"""The simulated book's depth on the publish path: ticks/s of the simulated feed's chain
ticks, full mode (a book a contract, its depth and totals in every tick) against none.

Target: the depth costs under 5 % of simulated ticks/s. Both variants do everything a
simulated account stream does with a chain tick, timed together: ``MockOptionBook.tick``
prices the chain (with ``depth=True`` it also makes the books), each option is serialised
(``option_tick``; with depth, ``ModeFields.columns`` writes the chain's depth first) and
offered through ``Outlet.publish_option`` to a running ``TickPublisher`` (shared breaker
running), then the chain's bars. Two measurements:

- rounds: ticks/s at saturation of each variant, and ticks a CPU second of this process,
  which goes first rotating; the cost is the median over rounds of ``1 - depth / none``;
- chain by chain: each chain tick made both ways back to back on one running publisher
  (which first alternating, a pair of each order averaged), the median difference a tick
  over a tick's time without depth, in this thread's CPU time (``time.thread_time``: on a
  machine others load, what another process takes of the CPU is not counted) and in wall
  time.

The nanoseconds a tick of making the books, writing their JSON and the per-tick rest are
also timed apart (no Redis). redis-server is started on a free loopback port and stopped
by this script. The last line printed is one JSON object.

    python bench/depth.py [--options 400] [--seconds 1.5] [--rounds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bars import keep_up, publishing, spread  # noqa: E402
from bench.breaker import start_redis  # noqa: E402
from bench.publish import (  # noqa: E402
    CHANNELS,
    PAYLOADS,
    SPOT,
    TZ,
    Recorder,
    contracts,
    drained,
    gone,
    row_of,
    running,
)
from tickfleet.config.settings import Settings  # noqa: E402
from tickfleet.history.bars import BarBuilder  # noqa: E402
from tickfleet.market.options import ChainSpec, MockOptionBook  # noqa: E402
from tickfleet.market.snapshot import MockUnderlyingSnapshot  # noqa: E402
from tickfleet.runtime.heap import tune_for_streaming  # noqa: E402
from tickfleet.stream.feeds.simulated.depth_json import BookWriter, ModeFields  # noqa: E402
from tickfleet.stream.feeds.simulated.options import option_tick  # noqa: E402
from tickfleet.stream.outlet import Outlet  # noqa: E402
from tickfleet.ticks.payloads import OptionPayload, Stamp  # noqa: E402

TARGET_OVERHEAD = 0.05
BAR_SECONDS: float = Settings.model_fields["history_bar_seconds"].default


@dataclass
class Feed:
    """One simulated account stream's chain: its book, random generator and mode fields."""

    book: MockOptionBook
    rng: np.random.Generator
    fields: ModeFields
    depth: bool
    modes: list[str]

    @classmethod
    def of(cls, n_options: int, now: datetime, depth: bool, seed: int) -> Feed:
        book = MockOptionBook(ChainSpec(), max_size=n_options)
        held = contracts(n_options, now.date())
        book.ensure(held)
        PAYLOADS.update((c.instrument_token, OptionPayload(row_of(c))) for c in held)
        return cls(book, np.random.default_rng(seed), ModeFields(), depth, ["FULL"] * n_options)


def offer(feed: Feed, outlet: Outlet, index: MockUnderlyingSnapshot, now: datetime) -> int:
    """What a simulated account stream does with a chain tick (``SimulatedOptions.tick``):
    price it, serialise and hand over each option, then the chain's bars."""
    book = feed.book
    states = book.tick(index, now, feed.rng, depth=feed.depth)
    publish, stamp = outlet.publish_option, Stamp.of(states[0].timestamp, TZ)
    chain, depth = book.last_chain, book.last_depth
    assert chain is not None
    if depth is None:
        for s in states:
            token = s.instrument_token
            publish(token, option_tick(PAYLOADS[token], stamp, s))
    else:
        columns = feed.fields.columns(depth, feed.modes)
        for s, book_json, buy, sell in zip(states, *columns, strict=True):
            token = s.instrument_token
            publish(token, option_tick(PAYLOADS[token], stamp, s, book_json, buy, sell))
    outlet.chain_bars(chain, True)
    return len(states)


def walk(n_ticks: int, start: datetime, seed: int = 11) -> list[MockUnderlyingSnapshot]:
    """``n_ticks`` index snapshots a second apart, walking."""
    rng, price, out = np.random.default_rng(seed), SPOT, []
    for k in range(n_ticks):
        price *= 1.0 + 0.0002 * float(rng.standard_normal())
        ts = (start + timedelta(seconds=k)).timestamp()
        out.append(MockUnderlyingSnapshot(k + 1, "NIFTY 50", price, SPOT, SPOT, SPOT, SPOT, 0, ts))
    return out


class Clock:
    """The chain ticks' instants: one a second from ``start``, with their index."""

    def __init__(self, start: datetime, walk_: Sequence[MockUnderlyingSnapshot]) -> None:
        self.start, self.walk, self.k = start, walk_, 0

    def next(self) -> tuple[MockUnderlyingSnapshot, datetime]:
        self.k += 1
        return self.walk[self.k % len(self.walk)], self.start + timedelta(seconds=self.k)


Runs = dict[str, list[float]]


async def rate(
    url: str, feeds: dict[str, Feed], clock: Clock, seconds: float, rounds: int
) -> tuple[Runs, Runs]:
    """Ticks/s and ticks a CPU second of each variant's rounds on one publisher, the first
    rotating."""
    wall: Runs = {name: [] for name in feeds}
    cpu: Runs = {name: [] for name in feeds}
    recorder = Recorder()
    async with publishing(url, recorder) as (publisher, _):
        outlet = Outlet(publisher, CHANNELS, BarBuilder(BAR_SECONDS))

        async def one(feed: Feed) -> tuple[float, float]:
            published, start, offered = publisher.published, gone(publisher, recorder), 0
            async with running(publisher):
                began, used = time.perf_counter(), time.process_time()
                while time.perf_counter() - began < seconds:
                    offered += offer(feed, outlet, *clock.next())
                    await keep_up(publisher)
                await drained(publisher, recorder, start + offered)
                elapsed, used = time.perf_counter() - began, time.process_time() - used
            ticks = publisher.published - published
            return ticks / elapsed, ticks / used

        names = list(feeds)
        for name in names:  # warm-up
            await one(feeds[name])
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                per_second, per_cpu_second = await one(feeds[name])
                wall[name].append(per_second)
                cpu[name].append(per_cpu_second)
    return wall, cpu


@dataclass
class Paired:
    """The depth's ns a tick chain by chain and a tick's ns without it (medians), by
    clock, and how many pairs."""

    extra: dict[str, float]
    tick: dict[str, float]
    pairs: int


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.thread_time, "wall": time.perf_counter}


async def paired(url: str, feeds: dict[str, Feed], clock: Clock, seconds: float) -> Paired:
    """Each chain tick both ways back to back, timed on both clocks."""
    recorder = Recorder()
    diffs: Runs = {name: [] for name in CLOCKS}
    plain: Runs = {name: [] for name in CLOCKS}
    n = len(feeds["none"].modes)
    async with publishing(url, recorder) as (publisher, _):
        outlet = Outlet(publisher, CHANNELS, BarBuilder(BAR_SECONDS))
        start, ticks, k = gone(publisher, recorder), 0, 0
        async with running(publisher):
            began = time.perf_counter()
            while time.perf_counter() - began < seconds:
                index, now = clock.next()
                spent: dict[tuple[str, str], float] = {}
                for name in ["depth", "none"] if k % 2 else ["none", "depth"]:
                    t0 = {c: read() for c, read in CLOCKS.items()}
                    ticks += offer(feeds[name], outlet, index, now)
                    spent.update({(name, c): read() - t0[c] for c, read in CLOCKS.items()})
                for c in CLOCKS:
                    diffs[c].append((spent["depth", c] - spent["none", c]) / n)
                    plain[c].append(spent["none", c] / n)
                k += 1
                await keep_up(publisher)
            await drained(publisher, recorder, start + ticks)
    extra = {
        c: 1e9 * statistics.median((a + b) / 2 for a, b in zip(d[::2], d[1::2], strict=False))
        for c, d in diffs.items()
    }
    return Paired(extra, {c: 1e9 * statistics.median(p) for c, p in plain.items()}, k)


def parts_ns(n_options: int, now: datetime, passes: int = 300) -> dict[str, float]:
    """Nanoseconds a tick of each part alone, no Redis (medians of passes, CPU time)."""
    feed = Feed.of(n_options, now, True, 5)
    index = walk(1, now)[0]
    feed.book.tick(index, now, feed.rng, depth=True)
    depth = feed.book.last_depth
    assert depth is not None
    writer = BookWriter()

    def timed(call: Callable[[], object]) -> float:
        costs = []
        for _ in range(passes):
            t0 = time.thread_time()
            call()
            costs.append(time.thread_time() - t0)
        return 1e9 * statistics.median(costs) / n_options

    book = feed.book
    tick_plain = timed(lambda: book.tick(index, now, feed.rng, depth=False))
    tick_books = timed(lambda: book.tick(index, now, feed.rng, depth=True))
    return {
        "books_ns": round(tick_books - tick_plain, 1),
        "json_ns": round(timed(lambda: writer.rows(depth)), 1),
        "columns_ns": round(timed(lambda: feed.fields.columns(depth, feed.modes)), 1),
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--options", type=int, default=400, help="options in the ticked chain")
    parser.add_argument("--seconds", type=float, default=1.5, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--paired-seconds", type=float, default=20.0, help="chain by chain")
    return parser.parse_args()


def report(args: argparse.Namespace, runs: tuple[Runs, Runs], pair: Paired) -> dict[str, float]:
    """Print the figures; returns them for the JSON line."""
    print(f"chain of {args.options} options, all FULL; {args.rounds} rounds of {args.seconds}s")
    summary: dict[str, float] = {}
    for clock, per in zip(("wall", "cpu"), runs, strict=True):
        costs = [1.0 - d / n for d, n in zip(per["depth"], per["none"], strict=True)]
        none, depth = statistics.median(per["none"]), statistics.median(per["depth"])
        unit = "ticks/s" if clock == "wall" else "ticks a CPU second"
        print(f"{unit}: none {none:,.0f}, depth {depth:,.0f}: costs {statistics.median(costs):.2%}")
        print(f"  ({spread(costs)})")
        summary |= {
            f"{clock}_none": round(none),
            f"{clock}_depth": round(depth),
            f"{clock}_overhead": round(statistics.median(costs), 4),
        }
    for clock in CLOCKS:
        share = pair.extra[clock] / pair.tick[clock]
        verdict = "OK" if share < TARGET_OVERHEAD else "MISSED"
        print(
            f"chain by chain, {clock} ({pair.pairs:,} pairs): depth {pair.extra[clock]:.0f} ns a "
            f"tick of {pair.tick[clock]:,.0f} ns without: {share:.2%} "
            f"(target < {TARGET_OVERHEAD:.0%}: {verdict})"
        )
        summary |= {
            f"paired_{clock}_depth_ns": round(pair.extra[clock], 1),
            f"paired_{clock}_tick_ns": round(pair.tick[clock], 1),
            f"paired_{clock}_overhead": round(share, 4),
        }
    return summary | {"pairs": pair.pairs}


def main() -> None:
    args = arguments()
    now = datetime.now(TZ).replace(hour=10, minute=0, second=0, microsecond=0)
    feeds = {
        "depth": Feed.of(args.options, now, True, 7),
        "none": Feed.of(args.options, now, False, 7),
    }
    clock = Clock(now, walk(600, now))
    tune_for_streaming()
    before = os.getloadavg()[0]
    parts = parts_ns(args.options, now)
    with tempfile.TemporaryDirectory(prefix="bench-depth-") as workdir:
        server = start_redis(Path(workdir))
        try:
            runs = asyncio.run(rate(server.url, feeds, clock, args.seconds, args.rounds))
            pair = asyncio.run(paired(server.url, feeds, clock, args.paired_seconds))
        finally:
            server.stop()
    after = os.getloadavg()[0]
    summary = report(args, runs, pair)
    print(
        f"apart, CPU: the books {parts['books_ns']} ns, their JSON {parts['json_ns']} ns, the "
        f"modes' columns (JSON included) {parts['columns_ns']} ns a tick"
    )
    print(f"load average {before:.2f} before, {after:.2f} after")
    loads = {"load_before": round(before, 2), "load_after": round(after, 2)}
    print(json.dumps(summary | parts | loads))


if __name__ == "__main__":
    main()
