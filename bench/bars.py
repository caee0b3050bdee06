"""The stream's bars on the tick path: ticks/s published through ``Outlet``, bars or none.

Issue 16's target: the bars must not slow publishing measurably, at most 2 % of
``bench/publish.py``'s throughput at saturation, where everything but the tick path is
idle and any cost shows most. Only a simulated stream saturates (a live one is paced by
Kite), and the simulated book prices a whole chain at one time into arrays, so its bars
are built a chain at a time (``BarBuilder.add_chain``: a few array operations a chain);
a live tick's bar is built with it (``BarBuilder.add``).

Three variants share one publisher (``TickPublisher.run`` sending, a running
``SharedBreaker``), one Redis and the same payloads, serialised inside the timed loop as a
feed does, a chain at one time (the wall clock's, as the live feed stamps a frame):

- ``bars``: the simulated feed's way: each tick through ``Outlet.publish_option``, then
  the chain's bars through ``Outlet.chain_bars``, a ``BarFlusher`` handing the changed
  bars to the same Redis every second;
- ``per_tick``: the live feed's way, each tick's bar with it (``Outlet.option``), flushed
  the same way;
- ``none``: each tick through ``Outlet.publish_option``, no bars: the baseline.

Rounds rotate which goes first; a variant's overhead is the median over rounds of each
round's ``1 - variant / none``. The nanoseconds a tick of ``add_chain`` and of ``add``
alone (no Redis, no publisher) are timed apart. redis-server is started on a free
loopback port and stopped by this script. The last line printed is one JSON object.

    python bench/bars.py [--options 400] [--seconds 1.5] [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.breaker import start_redis  # noqa: E402
from bench.publish import (  # noqa: E402
    CHANNELS,
    TZ,
    Chain,
    Recorder,
    drained,
    gone,
    make_chains,
    publisher_for,
    running,
    shared_breaker,
    superset,
)
from tickfleet.config.settings import Settings  # noqa: E402
from tickfleet.history.bars import BarBuilder, BarFlusher  # noqa: E402
from tickfleet.keyspace.keys import Keys  # noqa: E402
from tickfleet.market.options import ChainArrays  # noqa: E402
from tickfleet.runtime.connections import fail_fast_async_client  # noqa: E402
from tickfleet.runtime.heap import tune_for_streaming  # noqa: E402
from tickfleet.stream.outlet import Outlet  # noqa: E402
from tickfleet.stream.publisher import PublisherConfig, TickPublisher  # noqa: E402
from tickfleet.ticks.payloads import Stamp  # noqa: E402

TARGET_OVERHEAD = 0.02
HIGH_WATER = 2 * PublisherConfig().batch_max  # ticks waiting before the producer yields
BAR_SECONDS: float = Settings.model_fields["history_bar_seconds"].default
FLUSH_SECONDS: float = Settings.model_fields["history_bar_flush_seconds"].default

Runs = dict[str, list[float]]  # a figure of each round, by variant


Offer = Callable[[Outlet, Chain, "Columns", float], None]


@dataclass(frozen=True)
class Columns:
    """A chain tick as the book's arrays (``MockOptionBook.last_chain``), minus the time."""

    tokens: tuple[int, ...]
    prices: npt.NDArray[np.float64]
    volumes: npt.NDArray[np.int64]
    ois: npt.NDArray[np.int64]

    @classmethod
    def of(cls, chain: Chain) -> Columns:
        return cls(
            tuple(s.instrument_token for s in chain),
            np.array([s.last_price for s in chain]),
            np.array([s.volume for s in chain], dtype=np.int64),
            np.array([s.oi for s in chain], dtype=np.int64),
        )


def offer_without_bars(outlet: Outlet, chain: Chain, columns: Columns, ts: float) -> None:
    """A chain tick with no bars at all: the baseline."""
    publish = outlet.publish_option
    stamp = Stamp.of(ts, TZ)  # one chain tick, one time
    for s in chain:
        publish(s.instrument_token, superset(s, stamp))


def offer_simulated(outlet: Outlet, chain: Chain, columns: Columns, ts: float) -> None:
    """What the simulated feed does with a chain tick: serialise each option, hand it over,
    then the chain's bars at once."""
    offer_without_bars(outlet, chain, columns, ts)
    c = columns
    outlet.chain_bars(ChainArrays(c.tokens, ts, c.prices, c.volumes, c.ois), True)


def offer_per_tick(outlet: Outlet, chain: Chain, columns: Columns, ts: float) -> None:
    """The live feed's way: each tick's bar with it (``Outlet.option``)."""
    option = outlet.option
    stamp = Stamp.of(ts, TZ)
    for s in chain:
        option(s.instrument_token, superset(s, stamp), ts, s.last_price, s.volume, s.oi, True)


@contextlib.asynccontextmanager
async def publishing(
    url: str, recorder: Recorder
) -> AsyncIterator[tuple[TickPublisher, aioredis.Redis]]:
    """A publisher with a running shared breaker, and a client for the bars' flushes."""
    async with (
        shared_breaker(url) as breaker,
        publisher_for(url, recorder, breaker) as publisher,
        fail_fast_async_client(url, 2.0) as fleet,
    ):
        yield publisher, fleet


async def keep_up(publisher: TickPublisher) -> None:
    """Yield while more than two batches wait, as in ``bench/publish.py``."""
    while publisher.backlog > HIGH_WATER:
        await asyncio.sleep(0)


async def outlet_rate(
    outlet: Outlet,
    offer: Offer,
    publisher: TickPublisher,
    recorder: Recorder,
    chains: Sequence[tuple[Chain, Columns]],
    seconds: float,
) -> tuple[float, float]:
    """Ticks published to Redis per second and per CPU second of this process, offered
    through ``outlet`` as fast as the publisher takes them (the producer yields while more
    than two batches wait, as in ``bench/publish.py``)."""
    published, start = publisher.published, gone(publisher, recorder)
    offered = 0
    async with running(publisher):
        began, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() - began < seconds:
            chain, columns = chains[offered // len(chains[0][0]) % len(chains)]
            offer(outlet, chain, columns, time.time())
            offered += len(chain)
            await keep_up(publisher)
        await drained(publisher, recorder, start + offered)
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    ticks = publisher.published - published
    return ticks / elapsed, ticks / cpu


@contextlib.asynccontextmanager
async def flushing(flusher: BarFlusher) -> AsyncIterator[None]:
    """``flusher.flush()`` every ``FLUSH_SECONDS`` for the block, as the stream's bars task.

    The loop is stopped between flushes, not cancelled: a cancelled flush could leave its
    pipeline's connection waiting, and a benchmark must not hang on it.
    """
    stop = asyncio.Event()

    async def every() -> None:
        while True:
            try:
                await asyncio.wait_for(stop.wait(), FLUSH_SECONDS)
                return
            except TimeoutError:
                await flusher.flush()

    task = asyncio.create_task(every())
    try:
        yield
    finally:
        stop.set()
        await task


VARIANTS: dict[str, Offer] = {
    "bars": offer_simulated,
    "per_tick": offer_per_tick,
    "none": offer_without_bars,
}


async def rounds_of(
    url: str,
    chains: Sequence[tuple[Chain, Columns]],
    seconds: float,
    rounds: int,
    variants: dict[str, Offer] = VARIANTS,
) -> tuple[Runs, Runs]:
    """Ticks/s and ticks a CPU second of each variant's rounds: one ``Outlet`` and running
    ``BarFlusher`` per variant (the baseline's flushes nothing), all on one publisher;
    the variant that goes first rotates."""
    wall: Runs = {name: [] for name in variants}
    cpu: Runs = {name: [] for name in variants}
    recorder = Recorder()
    async with publishing(url, recorder) as (publisher, fleet):
        flushers = {
            name: BarFlusher(BarBuilder(BAR_SECONDS), fleet, Keys().history_bars, FLUSH_SECONDS)
            for name in variants
        }

        async def rate(name: str) -> tuple[float, float]:
            outlet = Outlet(publisher, CHANNELS, flushers[name].builder)
            async with flushing(flushers[name]):
                return await outlet_rate(
                    outlet, variants[name], publisher, recorder, chains, seconds
                )

        names = list(variants)
        for name in names:  # warm-up
            await rate(name)
        for r in range(rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                per_second, per_cpu_second = await rate(name)
                wall[name].append(per_second)
                cpu[name].append(per_cpu_second)
        for flusher in flushers.values():
            await flusher.close()
        for name, flusher in flushers.items():
            if (flusher.flushed == 0) != (name == "none"):
                raise RuntimeError(f"variant {name} flushed {flusher.flushed} bars")
    return wall, cpu


async def paired_ns(
    url: str, chains: Sequence[tuple[Chain, Columns]], seconds: float
) -> tuple[float, float, int]:
    """The bars' cost a tick measured chain by chain: each chain tick offered the simulated
    feed's way and without bars back to back (which first alternating) on one running
    publisher, so whatever else the machine does falls on both alike. Returns the median
    of the paired differences (a pair of each order averaged) and the flushes' CPU time a
    tick (an upper bound: the publisher's sending during a flush's await counts too), in
    ns, and the pairs."""
    recorder = Recorder()
    async with publishing(url, recorder) as (publisher, fleet):
        flusher = BarFlusher(BarBuilder(BAR_SECONDS), fleet, Keys().history_bars, FLUSH_SECONDS)
        ways = [
            (offer_simulated, Outlet(publisher, CHANNELS, flusher.builder)),
            (offer_without_bars, Outlet(publisher, CHANNELS, BarBuilder(BAR_SECONDS))),
        ]
        start = gone(publisher, recorder)
        diffs: list[float] = []
        flush_cpu, ticks = 0.0, 0
        async with running(publisher):
            began = time.perf_counter()
            next_flush = began + FLUSH_SECONDS
            while time.perf_counter() - began < seconds:
                chain, columns = chains[len(diffs) % len(chains)]
                ts, spent = time.time(), {}
                for offer, outlet in ways if len(diffs) % 2 else ways[::-1]:
                    t0 = time.perf_counter()
                    offer(outlet, chain, columns, ts)
                    spent[offer] = time.perf_counter() - t0
                diffs.append((spent[offer_simulated] - spent[offer_without_bars]) / len(chain))
                ticks += len(chain)
                if time.perf_counter() >= next_flush:
                    cpu = time.process_time()
                    await flusher.flush()
                    flush_cpu += time.process_time() - cpu
                    next_flush += FLUSH_SECONDS
                await keep_up(publisher)
            await drained(publisher, recorder, start + 2 * ticks)
        await flusher.close()
    # Whichever goes first in a pair may pay more (the cache, the publisher's last batch):
    # one pair of each order, averaged, cancels that before the median is taken.
    both = [(a + b) / 2 for a, b in zip(diffs[::2], diffs[1::2], strict=False)]
    return 1e9 * statistics.median(both), 1e9 * flush_cpu / ticks, len(diffs)


def _no_bar(
    token: int, ts: float, price: float, volume: int | None, oi: int | None, mock: bool
) -> None:
    pass


def per_tick_ns(chains: Sequence[Chain], passes: int = 200) -> float:
    """Nanoseconds a tick of ``BarBuilder.add`` less a no-op call, median of passes.

    The builder is warmed by one pass first: in a stream a token's bar begins once a
    minute, every other tick of the minute finds it open.
    """
    builder = BarBuilder(BAR_SECONDS)
    costs = []
    for n in range(passes + 1):
        spent, ticks = [], 0
        for add in (builder.add, _no_bar):
            ticks = 0
            began = time.perf_counter()
            for chain in chains:
                ts = 1_764_561_600.0 + n % 50 + 0.1 * ticks / len(chain)  # one bar start
                for s in chain:
                    add(s.instrument_token, ts, s.last_price, s.volume, s.oi, True)
                ticks += len(chain)
            spent.append(time.perf_counter() - began)
        if n:
            costs.append(1e9 * (spent[0] - spent[1]) / ticks)
    return statistics.median(costs)


def chain_ns(chains: Sequence[tuple[Chain, Columns]], passes: int = 200) -> float:
    """Nanoseconds a tick of ``BarBuilder.add_chain``, a whole chain a call."""
    builder = BarBuilder(BAR_SECONDS)
    costs = []
    for n in range(passes + 1):
        ticks = 0
        began = time.perf_counter()
        for _, c in chains:
            ts = 1_764_561_600.0 + n % 50 + 0.1 * ticks / len(c.tokens)
            builder.add_chain(c.tokens, ts, c.prices, c.volumes, c.ois, True)
            ticks += len(c.tokens)
        if n:
            costs.append(1e9 * (time.perf_counter() - began) / ticks)
    return statistics.median(costs)


def costs(runs: Runs, name: str) -> list[float]:
    """Each round's figure ``name`` costs against the baseline's (negative: noise)."""
    return [1.0 - b / n for b, n in zip(runs[name], runs["none"], strict=True)]


def spread(paired: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(paired, n=4) if len(paired) > 1 else [paired[0]] * 3
    return f"rounds' quartiles {q1:.2%}..{q3:.2%}, {min(paired):.2%}..{max(paired):.2%}"


def report_variant(name: str, wall: Runs, cpu: Runs, ns: float) -> dict[str, float]:
    by_wall, by_cpu = costs(wall, name), costs(cpu, name)
    overhead, cpu_overhead = statistics.median(by_wall), statistics.median(by_cpu)
    verdict = "OK" if overhead <= TARGET_OVERHEAD else "MISSED"
    print(
        f"Outlet, {name + ':':<22} {statistics.median(wall[name]):10,.0f} ticks/s, "
        f"{statistics.median(cpu[name]):10,.0f} a CPU second; the bars alone {ns:.0f} ns a tick"
    )
    print(f"  costs {overhead:.2%} of ticks/s ({spread(by_wall)})")
    print(f"  costs {cpu_overhead:.2%} of ticks a CPU second ({spread(by_cpu)})")
    if name == "bars":
        print(f"  target <= {TARGET_OVERHEAD:.0%} of ticks/s: {verdict}")
    key = "" if name == "bars" else f"{name}_"
    return {
        f"{key}ticks_per_s": round(statistics.median(wall[name])),
        f"{key}ticks_per_cpu_s": round(statistics.median(cpu[name])),
        f"{key}overhead": round(overhead, 4),
        f"{key}cpu_overhead": round(cpu_overhead, 4),
        f"{key}bar_ns": round(ns, 1),
    }


def report(
    args: argparse.Namespace, runs: tuple[Runs, Runs], ns: dict[str, float], load: Sequence[float]
) -> dict[str, float]:
    wall, cpu = runs
    print(f"chain of {args.options} options; serialising every tick inside every timed loop")
    print(f"{args.rounds} rounds of {args.seconds}s per variant, first rotating (medians)")
    none, none_cpu = statistics.median(wall["none"]), statistics.median(cpu["none"])
    print(f"Outlet, no bars:        {none:10,.0f} ticks/s, {none_cpu:10,.0f} a CPU second")
    summary: dict[str, float] = {
        "none_ticks_per_s": round(none), "none_ticks_per_cpu_s": round(none_cpu)
    }  # fmt: skip
    for name, add in ns.items():
        summary.update(report_variant(name, wall, cpu, add))
    print(f"load average {load[0]:.2f} before, {load[1]:.2f} after")
    summary.update(rounds=args.rounds, load_before=round(load[0], 2), load_after=round(load[1], 2))
    return summary


def measure(args: argparse.Namespace, variants: dict[str, Offer]) -> dict[str, float]:
    """Every variant against the baseline, in one run on one redis-server."""
    chains = [(chain, Columns.of(chain)) for chain in make_chains(args.options, 8)]
    tokens = chains[0][1].tokens  # one chain's tokens are one tuple, as the book's layout
    if any(c.tokens != tokens for _, c in chains):
        raise RuntimeError("the benchmarked chains do not share their tokens")
    chains = [(chain, replace(c, tokens=tokens)) for chain, c in chains]
    tune_for_streaming()  # as a stream process does
    before = os.getloadavg()[0]
    ns = {"bars": chain_ns(chains), "per_tick": per_tick_ns([c for c, _ in chains])}
    with tempfile.TemporaryDirectory(prefix="bench-bars-") as workdir:
        server = start_redis(Path(workdir))
        try:
            runs = asyncio.run(rounds_of(server.url, chains, args.seconds, args.rounds, variants))
            paired = asyncio.run(paired_ns(server.url, chains, args.paired_seconds))
        finally:
            server.stop()
    summary = report(args, runs, ns, (before, os.getloadavg()[0]))
    return summary | report_paired(paired, summary["none_ticks_per_s"])


def report_paired(paired: tuple[float, float, int], none_ticks_per_s: float) -> dict[str, float]:
    """The paired estimate: the bars' ns a tick over a tick's ns at saturation without them."""
    bars, flush, pairs = paired
    tick = 1e9 / none_ticks_per_s
    overhead = (bars + flush) / tick
    verdict = "OK" if overhead <= TARGET_OVERHEAD else "MISSED"
    print(
        f"paired, chain by chain ({pairs:,} pairs): the bars {bars:.1f} ns a tick + flushes "
        f"{flush:.1f} ns a tick, of {tick:,.0f} ns a tick without bars: {overhead:.2%} "
        f"(target <= {TARGET_OVERHEAD:.0%}: {verdict})"
    )
    return {
        "paired_bar_ns": round(bars, 1),
        "paired_flush_ns": round(flush, 1),
        "paired_overhead": round(overhead, 4),
        "pairs": pairs,
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--options", type=int, default=400, help="options in the ticked chain")
    parser.add_argument("--seconds", type=float, default=1.5, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=40)  # rounds vary by ±10 % here
    parser.add_argument("--paired-seconds", type=float, default=20.0, help="chain by chain")
    return parser.parse_args()


def main() -> None:
    print(json.dumps(measure(arguments(), VARIANTS)))


if __name__ == "__main__":
    main()
