"""Tick publishing against a real Redis: throughput, latency under load, and chain greeks.

1. Throughput. Option ticks of a simulated chain (``MockOptionBook``) are serialised the
   way a feed does it (``to_tick`` + ``orjson.dumps``, inside the timed loop) and pushed
   through ``TickPublisher`` (``run`` flushing pipelines of PUBLISH plus one latest-tick
   HSET per batch, guarded by a started ``SharedBreaker`` on the same Redis). The baseline
   is the predecessor's way: one awaited PUBLISH per tick with redis.asyncio, no HSET.
   Rounds alternate which variant goes first; figures are medians over rounds.
2. Latency. A producer offers ticks paced at ``--rate`` per second (a slice every 5 ms)
   while ``run`` flushes. Tick-to-publish latency is offer to pipeline completion, taken
   unbucketed from the publisher's own observations; a subscriber in another process also
   timestamps every message it receives against the offer time carried in the payload.
3. Greeks. ``bench.greeks.measure_greeks`` on a 5000-option chain.

redis-server is started on a free loopback port and stopped by this script. The last line
printed is one JSON object.

    python bench/publish.py [--options 400] [--seconds 1.5] [--rounds 5] [--rate 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import redis
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.breaker import start_redis  # noqa: E402
from bench.greeks import measure_greeks  # noqa: E402
from tickfleet.breaker import Breaker, BreakerConfig, SharedBreaker, connect_store  # noqa: E402
from tickfleet.market.contracts import InstrumentType  # noqa: E402
from tickfleet.market.options import (  # noqa: E402
    ChainSpec,
    MockOptionBook,
    MockOptionSnapshot,
    OptionContract,
)
from tickfleet.market.snapshot import MockUnderlyingSnapshot  # noqa: E402
from tickfleet.market.ticks import to_tick  # noqa: E402
from tickfleet.metrics import Labels, MetricsBuffer  # noqa: E402
from tickfleet.names import Channels  # noqa: E402
from tickfleet.stream.publisher import PublisherConfig, TickPublisher  # noqa: E402

TARGET_RATIO = 10.0
TZ = "Asia/Kolkata"
SPOT = 24_000.0
LATENCY = "tick_publish_latency_seconds"
CHANNELS = Channels()
END = b"end"
SLICE_SECONDS = 0.005
DRAIN_TIMEOUT = 10.0
SUBSCRIBER_TIMEOUT = 15.0

Chain = list[MockOptionSnapshot]


# --- the chain ----------------------------------------------------------------------------


def contracts(n_options: int, today: date) -> list[OptionContract]:
    """Calls and puts every 50 points around the spot, over two weekly expiries."""
    expiries = (today + timedelta(days=2), today + timedelta(days=9))
    kinds: tuple[InstrumentType, InstrumentType] = ("CE", "PE")
    per_expiry = -(-n_options // 2)
    strikes = [SPOT + 50.0 * (k - per_expiry // 4) for k in range(-(-per_expiry // 2))]
    held = [
        OptionContract(0, f"NIFTY{expiry:%y%m%d}{strike:.0f}{kind}", kind, strike, expiry)
        for expiry in expiries
        for strike in strikes
        for kind in kinds
    ][:n_options]
    return [
        OptionContract(12_000_000 + i, c.tradingsymbol, c.instrument_type, c.strike, c.expiry)
        for i, c in enumerate(held)
    ]


def make_chains(n_options: int, n_ticks: int, seed: int = 11) -> list[Chain]:
    """``n_ticks`` successive ticks of a whole chain, the underlying walking between them."""
    tz = ZoneInfo(TZ)
    now = datetime.now(tz)
    book = MockOptionBook(ChainSpec(tz=TZ), max_size=max(n_options, 1))
    book.ensure(contracts(n_options, now.date()))
    rng = np.random.default_rng(seed)
    chains = []
    price = SPOT
    for k in range(n_ticks):
        price *= 1.0 + 0.0002 * float(rng.standard_normal())
        at = now + timedelta(seconds=k)
        underlying = MockUnderlyingSnapshot(
            k + 1, "NIFTY 50", price, SPOT, max(price, SPOT), min(price, SPOT), SPOT, 0, at.timestamp()
        )
        chains.append(book.tick(underlying, at, rng))
    return chains


# --- throughput ---------------------------------------------------------------------------


def offer_chain(publisher: TickPublisher, chain: Chain, tz: ZoneInfo) -> None:
    """What a feed does on every tick: serialise each option and hand it to the publisher."""
    channel, latest = CHANNELS.options, CHANNELS.latest_options
    for state in chain:
        payload = orjson.dumps(to_tick(state, tz))
        publisher.offer(channel, latest, str(state.instrument_token), payload)


async def drained(publisher: TickPublisher, target: int, timeout: float = DRAIN_TIMEOUT) -> None:
    """Wait until ``target`` ticks have left the publisher (published or dropped)."""
    deadline = time.monotonic() + timeout
    while publisher.published + publisher.dropped < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"publisher did not drain within {timeout}s")
        await asyncio.sleep(0.0005)


@contextlib.asynccontextmanager
async def running(publisher: TickPublisher) -> Any:
    task = asyncio.create_task(publisher.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def publisher_rate(
    publisher: TickPublisher, chains: Sequence[Chain], seconds: float, high_water: int
) -> float:
    """Ticks/s through serialiser + publisher while ``run`` flushes, backlog kept bounded."""
    tz = ZoneInfo(TZ)
    base = publisher.published + publisher.dropped
    offered = 0
    async with running(publisher):
        began = time.perf_counter()
        deadline = began + seconds
        while time.perf_counter() < deadline:
            chain = chains[offered // len(chains[0]) % len(chains)]
            offer_chain(publisher, chain, tz)
            offered += len(chain)
            while publisher.backlog > high_water:
                await asyncio.sleep(0)
        await drained(publisher, base + offered)
        elapsed = time.perf_counter() - began
    return offered / elapsed


async def baseline_rate(client: aioredis.Redis, chains: Sequence[Chain], seconds: float) -> float:
    """The predecessor: serialise, then one awaited PUBLISH per tick (no latest-tick hash)."""
    tz = ZoneInfo(TZ)
    channel = CHANNELS.options
    sent = 0
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        chain = chains[sent // len(chains[0]) % len(chains)]
        for state in chain:
            await client.publish(channel, orjson.dumps(to_tick(state, tz)))
        sent += len(chain)
    return sent / (time.perf_counter() - began)


@dataclass(frozen=True, slots=True)
class Throughput:
    publisher: list[float]
    baseline: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.publisher) / statistics.median(self.baseline)

    @property
    def paired(self) -> list[float]:
        return [p / b for p, b in zip(self.publisher, self.baseline, strict=True)]


async def throughput(
    url: str, breaker: Breaker, chains: Sequence[Chain], seconds: float, rounds: int
) -> Throughput:
    baseline_client = aioredis.Redis.from_url(url)
    target = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    config = PublisherConfig()
    publisher = TickPublisher(target, "bench", MetricsBuffer(), config, breaker)
    high_water = 2 * config.batch_max
    try:
        await baseline_rate(baseline_client, chains, seconds / 4)  # warm-up
        await publisher_rate(publisher, chains, seconds / 4, high_water)
        runs: dict[str, list[float]] = {"publisher": [], "baseline": []}
        for r in range(rounds):
            order = ("baseline", "publisher") if r % 2 == 0 else ("publisher", "baseline")
            for name in order:
                if name == "baseline":
                    rate = await baseline_rate(baseline_client, chains, seconds)
                else:
                    rate = await publisher_rate(publisher, chains, seconds, high_water)
                runs[name].append(rate)
    finally:
        await baseline_client.aclose()
        await target.aclose()
    return Throughput(runs["publisher"], runs["baseline"])


# --- latency ------------------------------------------------------------------------------


class LatencyRecorder:
    """The production metrics buffer, plus every raw tick-to-publish latency it is given.

    The buffer only keeps histogram buckets; percentiles need the observations themselves.
    """

    def __init__(self) -> None:
        self.buffer = MetricsBuffer()
        self.latencies: list[float] = []

    def inc(self, name: str, amount: float = 1.0, labels: Labels = None) -> None:
        self.buffer.inc(name, amount, labels)

    def observe(self, name: str, value: float, labels: Labels = None) -> None:
        self.buffer.observe(name, value, labels)
        if name == LATENCY:
            self.latencies.append(value)

    def set_gauge(self, name: str, value: float, labels: Labels = None) -> None:
        self.buffer.set_gauge(name, value, labels)


def subscribe(url: str, channel: str, conn: Connection, timeout: float) -> None:
    """A consumer in its own process: (offered_at, received_at) of every tick until END.

    ``time.monotonic`` is CLOCK_MONOTONIC, one clock for every process of the machine.
    """
    client = redis.Redis.from_url(url, socket_timeout=timeout)
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    deadline = time.monotonic() + timeout
    while pubsub.get_message(timeout=1.0) is None and time.monotonic() < deadline:
        pass  # the subscribe confirmation: from here on nothing published is missed
    conn.send("ready")
    offered: list[float] = []
    received: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
        if message is None:
            continue
        now = time.monotonic()
        if message["data"] == END:
            break
        received.append(now)
        offered.append(orjson.loads(message["data"])["offered_at"])
    conn.send((offered, received))
    pubsub.close()
    client.close()


def offer_stamped(
    publisher: TickPublisher, chain: Chain, start: int, count: int, tz: ZoneInfo
) -> None:
    """``count`` ticks of ``chain`` from ``start`` on, each carrying its offer time."""
    channel, latest = CHANNELS.options, CHANNELS.latest_options
    size = len(chain)
    for i in range(start, start + count):
        state = chain[i % size]
        tick: dict[str, Any] = dict(to_tick(state, tz))
        tick["offered_at"] = time.monotonic()
        publisher.offer(channel, latest, str(state.instrument_token), orjson.dumps(tick))


async def paced(
    publisher: TickPublisher, chains: Sequence[Chain], rate: float, seconds: float
) -> int:
    """Offer ``rate`` ticks/s for ``seconds``, a slice every 5 ms (a late slice catches up)."""
    tz = ZoneInfo(TZ)
    size = len(chains[0])
    offered = 0
    began = time.monotonic()
    slices = round(seconds / SLICE_SECONDS)
    for k in range(1, slices + 1):
        due = round(min(time.monotonic() - began, seconds) * rate) - offered
        if due > 0:
            offer_stamped(publisher, chains[offered // size % len(chains)], offered, due, tz)
            offered += due
        await asyncio.sleep(max(0.0, began + k * SLICE_SECONDS - time.monotonic()))
    return offered


@dataclass(frozen=True, slots=True)
class Latency:
    publisher_ms: list[float]
    subscriber_ms: list[float]
    offered_per_s: float
    achieved_per_s: float
    dropped: int
    received: int
    published: int


async def latency_run(
    url: str,
    breaker: Breaker,
    chains: Sequence[Chain],
    rate: float,
    warmup: float,
    seconds: float,
) -> tuple[LatencyRecorder, TickPublisher, float, float, int, float]:
    """Warm up, then a measured window; returns what the window saw."""
    target = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
    recorder = LatencyRecorder()
    publisher = TickPublisher(target, "bench", recorder, PublisherConfig(), breaker)
    try:
        async with running(publisher):
            warm = await paced(publisher, chains, rate, warmup)
            await drained(publisher, warm)
            recorder.latencies.clear()
            window_start = time.monotonic()
            offered = await paced(publisher, chains, rate, seconds)
            await drained(publisher, warm + offered)
            window = time.monotonic() - window_start
            published = len(recorder.latencies)
    finally:
        await target.aclose()
    return recorder, publisher, window_start, window, offered, published / window


def latency(url: str, breaker: Breaker, chains: Sequence[Chain], rate: float, seconds: float) -> Latency:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    args = (url, CHANNELS.options, theirs, SUBSCRIBER_TIMEOUT + seconds)
    consumer = context.Process(target=subscribe, args=args, daemon=True)
    consumer.start()
    try:
        if not ours.poll(SUBSCRIBER_TIMEOUT) or ours.recv() != "ready":
            raise TimeoutError("the subscriber did not start")
        run = latency_run(url, breaker, chains, rate, min(1.0, seconds / 4), seconds)
        recorder, publisher, window_start, window, offered, achieved = asyncio.run(run)
        redis.Redis.from_url(url).publish(CHANNELS.options, END)
        if not ours.poll(SUBSCRIBER_TIMEOUT):
            raise TimeoutError("the subscriber did not report")
        sent_at, received_at = ours.recv()
    finally:
        consumer.join(timeout=5)
        if consumer.is_alive():
            consumer.kill()
            consumer.join(timeout=5)
    end_to_end = [
        1000.0 * (r - s) for s, r in zip(sent_at, received_at, strict=True) if s >= window_start
    ]
    return Latency(
        publisher_ms=[1000.0 * x for x in recorder.latencies],
        subscriber_ms=end_to_end,
        offered_per_s=offered / window,
        achieved_per_s=achieved,
        dropped=publisher.dropped,
        received=len(end_to_end),
        published=len(recorder.latencies),
    )


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# --- report -------------------------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, Throughput]) -> Throughput:
    return asyncio.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--options", type=int, default=400, help="options in the ticked chain")
    parser.add_argument("--seconds", type=float, default=1.5, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=20_000.0, help="offered ticks/s")
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    parser.add_argument("--greeks-options", type=int, default=5000)
    parser.add_argument("--greeks-seconds", type=float, default=4.0)
    args = parser.parse_args()

    chains = make_chains(args.options, 8)
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as workdir:
        server = start_redis(Path(workdir))
        try:
            with SharedBreaker(connect_store(server.url), "bench-publish", BreakerConfig()) as breaker:
                speed = run_async(throughput(server.url, breaker, chains, args.seconds, args.rounds))
                lat = latency(server.url, breaker, chains, args.rate, args.latency_seconds)
                source = breaker.source
        finally:
            server.stop()
    greeks = measure_greeks(args.greeks_options, args.greeks_seconds)
    report(args, speed, lat, greeks, source)


def report(
    args: argparse.Namespace, speed: Throughput, lat: Latency, greeks: dict[str, float], source: str
) -> None:
    publisher = statistics.median(speed.publisher)
    baseline = statistics.median(speed.baseline)
    paired = speed.paired
    print(f"chain of {args.options} options, to_tick + orjson.dumps in the timed loop")
    print(f"{args.rounds} rounds of {args.seconds}s per variant, interleaved (medians)")
    print(f"TickPublisher + SharedBreaker ({source}): {publisher:12,.0f} ticks/s")
    print(f"one awaited PUBLISH per tick (baseline): {baseline:12,.0f} ticks/s")
    print(
        f"ratio: {speed.ratio:.1f}x (per round {min(paired):.1f}x..{max(paired):.1f}x); "
        f"target >= {TARGET_RATIO:.0f}x: {'OK' if speed.ratio >= TARGET_RATIO else 'MISSED'}"
    )
    p50, p99 = percentile(lat.publisher_ms, 50), percentile(lat.publisher_ms, 99)
    s50, s99 = percentile(lat.subscriber_ms, 50), percentile(lat.subscriber_ms, 99)
    print(
        f"offered {args.rate:,.0f} ticks/s in 5 ms slices for {args.latency_seconds}s: "
        f"achieved {lat.achieved_per_s:,.0f} published/s (offered {lat.offered_per_s:,.0f}/s), "
        f"{lat.dropped} dropped"
    )
    print(f"offer -> pipeline done:   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms   ({lat.published} ticks)")
    print(f"offer -> subscriber got:  p50 {s50:7.2f} ms   p99 {s99:7.2f} ms   ({lat.received} ticks)")
    print(
        f"greeks, {args.greeks_options} options: {greeks['options_per_s']:,.0f} options/s, "
        f"{greeks['ratio']:.1f}x the scalar loop, {greeks['chain_ms']:.2f} ms per chain"
    )
    print(
        json.dumps(
            {
                "ticks_per_s": round(publisher),
                "baseline_ticks_per_s": round(baseline),
                "ratio": round(speed.ratio, 2),
                "breaker": source,
                "options": args.options,
                "p50_latency_ms": round(p50, 3),
                "p99_latency_ms": round(p99, 3),
                "subscriber_p50_latency_ms": round(s50, 3),
                "subscriber_p99_latency_ms": round(s99, 3),
                "offered_ticks_per_s": round(args.rate),
                "achieved_ticks_per_s": round(lat.achieved_per_s),
                "dropped": lat.dropped,
                "greeks_options_per_s": round(greeks["options_per_s"]),
                "greeks_ratio": round(greeks["ratio"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
