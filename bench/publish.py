"""Tick publishing against a real Redis: throughput, latency under load, and chain greeks.

1. Throughput. Option ticks of a simulated chain (``MockOptionBook``) are serialised the
   way a feed does it (``to_tick`` + ``orjson.dumps``, inside the timed loop) and offered
   to ``TickPublisher`` while its ``run`` flushes them in pipelines (a PUBLISH per tick
   plus one latest-tick HSET per batch), guarded by a started ``SharedBreaker`` on the same
   Redis. The baseline is the predecessor's way, timed in the same run: serialise, then one
   awaited PUBLISH per tick with redis.asyncio (it wrote no latest-tick hash). Rounds
   alternate which variant goes first; figures are medians over rounds. The microseconds
   per tick of serialising, offering and flushing are also timed apart.
2. Latency. A producer offers ticks paced at ``--rate`` per second (a slice every 5 ms)
   while ``run`` flushes. Tick-to-publish latency is offer to pipeline completion, taken
   unbucketed from the publisher's own observations; a subscriber in its own process also
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
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.breaker import start_redis  # noqa: E402
from bench.greeks import measure_greeks  # noqa: E402
from tickfleet.breaker import Breaker, BreakerConfig, SharedBreaker  # noqa: E402
from tickfleet.connections import fail_fast_client  # noqa: E402
from tickfleet.market.contracts import InstrumentType  # noqa: E402
from tickfleet.market.options import (  # noqa: E402
    ChainSpec,
    MockOptionBook,
    MockOptionSnapshot,
    OptionContract,
)
from tickfleet.market.snapshot import MockUnderlyingSnapshot  # noqa: E402
from tickfleet.market.ticks import to_tick  # noqa: E402
from tickfleet.metrics import Labels, Metrics, MetricsBuffer  # noqa: E402
from tickfleet.names import Channels  # noqa: E402
from tickfleet.stream.publisher import PublisherConfig, TickPublisher  # noqa: E402

TARGET_RATIO = 10.0
TZ = ZoneInfo("Asia/Kolkata")
SPOT = 24_000.0
CHANNELS = Channels()
LATENCY = "tick_publish_latency_seconds"
FAILURES = "redis_publish_failures_total"
BUFFER_DROPS = "publish_buffer_drops_total"
END = b"end"
SLICE_SECONDS = 0.005
DRAIN_TIMEOUT = 20.0
SUBSCRIBER_TIMEOUT = 15.0

Chain = list[MockOptionSnapshot]


# --- the chain ----------------------------------------------------------------------------


def contracts(n_options: int, today: date) -> list[OptionContract]:
    """Calls and puts every 50 points around the spot, alternating two weekly expiries."""
    expiries = (today + timedelta(days=2), today + timedelta(days=9))
    kinds: tuple[InstrumentType, InstrumentType] = ("CE", "PE")
    below = n_options // 8  # strikes below the spot on each expiry
    held = []
    for i in range(n_options):
        pair, side = divmod(i, 2)
        expiry = expiries[pair % 2]
        strike = SPOT + 50.0 * (pair // 2 - below)
        kind = kinds[side]
        symbol = f"NIFTY{expiry:%y%m%d}{strike:.0f}{kind}"
        held.append(OptionContract(12_000_000 + i, symbol, kind, strike, expiry))
    return held


def make_chains(n_options: int, n_ticks: int, seed: int = 11) -> list[Chain]:
    """``n_ticks`` successive ticks of the whole chain, the index walking between them."""
    now = datetime.now(TZ)
    book = MockOptionBook(ChainSpec(tz=str(TZ)), max_size=max(n_options, 1))
    book.ensure(contracts(n_options, now.date()))
    rng = np.random.default_rng(seed)
    price = SPOT
    chains = []
    for k in range(n_ticks):
        price *= 1.0 + 0.0002 * float(rng.standard_normal())
        at = now + timedelta(seconds=k)
        index = MockUnderlyingSnapshot(
            version=k + 1,
            symbol="NIFTY 50",
            price=price,
            open=SPOT,
            high=max(price, SPOT),
            low=min(price, SPOT),
            close=SPOT,
            volume=0,
            ts=at.timestamp(),
        )
        chains.append(book.tick(index, at, rng))
    return chains


def chain_at(chains: Sequence[Chain], ticks_so_far: int) -> Chain:
    """The chain tick that follows ``ticks_so_far`` ticks, cycling through ``chains``."""
    return chains[ticks_so_far // len(chains[0]) % len(chains)]


# --- the publisher ------------------------------------------------------------------------


class Recorder:
    """The production metrics buffer, plus what a benchmark needs to read back.

    The buffer keeps histogram buckets only; percentiles need the raw tick-to-publish
    latencies, kept while ``keep`` is set. Counters are tallied by name.
    """

    def __init__(self, keep: bool = False) -> None:
        self.buffer = MetricsBuffer()
        self.keep = keep
        self.latencies: list[float] = []
        self.counts: dict[str, float] = {}

    def inc(self, name: str, amount: float = 1.0, labels: Labels = None) -> None:
        self.buffer.inc(name, amount, labels)
        self.counts[name] = self.counts.get(name, 0.0) + amount

    def observe(self, name: str, value: float, labels: Labels = None) -> None:
        self.buffer.observe(name, value, labels)
        if self.keep and name == LATENCY:
            self.latencies.append(value)

    def observe_many(self, name: str, values: Sequence[float], labels: Labels = None) -> None:
        self.buffer.observe_many(name, values, labels)
        if self.keep and name == LATENCY:
            self.latencies.extend(values)

    def set_gauge(self, name: str, value: float, labels: Labels = None) -> None:
        self.buffer.set_gauge(name, value, labels)

    @property
    def failed_flushes(self) -> int:
        return int(self.counts.get(FAILURES, 0))

    @property
    def buffer_drops(self) -> int:
        """Oldest ticks the publisher discarded because its buffer was full."""
        return int(self.counts.get(BUFFER_DROPS, 0))


@contextlib.asynccontextmanager
async def publisher_for(
    url: str, metrics: Metrics, breaker: Breaker
) -> AsyncIterator[TickPublisher]:
    """A publisher configured like a stream's, on its own fail-fast client."""
    timeout = PublisherConfig().timeout_seconds
    client = aioredis.Redis.from_url(  # as tickfleet.stream.assemble builds the publish target
        url, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )
    try:
        yield TickPublisher(client, "bench", metrics, PublisherConfig(), breaker)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def running(publisher: TickPublisher) -> AsyncIterator[None]:
    """``publisher.run()`` as a task for the duration of the block."""
    task = asyncio.create_task(publisher.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def gone(publisher: TickPublisher, recorder: Recorder) -> int:
    """Ticks that have left the publisher: published, dropped, or pushed out of a full buffer."""
    return publisher.published + publisher.dropped + recorder.buffer_drops


async def drained(
    publisher: TickPublisher, recorder: Recorder, target: int, timeout: float = DRAIN_TIMEOUT
) -> None:
    """Wait until ``target`` ticks in all have left the publisher.

    After a failed flush the publisher holds the newest tick per token and a newer offer of
    the token supersedes it uncounted, so an empty publisher that stays idle for longer than
    one pipeline may take counts as drained too.
    """
    config = PublisherConfig()
    settle = config.timeout_seconds + config.flush_seconds
    deadline = time.monotonic() + timeout
    last, idle_since = -1, time.monotonic()
    while (done := gone(publisher, recorder)) < target:
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"the publisher did not drain within {timeout}s")
        if publisher.backlog or publisher.held or done != last:
            last, idle_since = done, now
        elif now - idle_since > settle:
            return
        await asyncio.sleep(0.0005)


# --- throughput ---------------------------------------------------------------------------


def offer_chain(publisher: TickPublisher, chain: Chain) -> None:
    """What a feed does on every tick: serialise each option, hand it to the publisher."""
    channel, latest = CHANNELS.options, CHANNELS.latest_options
    for state in chain:
        payload = orjson.dumps(to_tick(state, TZ))
        publisher.offer(channel, latest, str(state.instrument_token), payload)


async def publisher_rate(
    publisher: TickPublisher, recorder: Recorder, chains: Sequence[Chain], seconds: float
) -> float:
    """Ticks/s through serialiser and publisher while ``run`` flushes.

    The producer offers whole chains and yields while more than two batches wait, so it
    serialises the next chain while a pipeline is on the wire, as a feed would.
    """
    high_water = 2 * PublisherConfig().batch_max
    published, start = publisher.published, gone(publisher, recorder)
    offered = 0
    async with running(publisher):
        began = time.perf_counter()
        while time.perf_counter() - began < seconds:
            chain = chain_at(chains, offered)
            offer_chain(publisher, chain)
            offered += len(chain)
            while publisher.backlog > high_water:
                await asyncio.sleep(0)
        await drained(publisher, recorder, start + offered)
        elapsed = time.perf_counter() - began
    return (publisher.published - published) / elapsed


async def baseline_rate(client: aioredis.Redis, chains: Sequence[Chain], seconds: float) -> float:
    """The predecessor: serialise, then one awaited PUBLISH per tick (no latest-tick hash)."""
    channel = CHANNELS.options
    sent = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        chain = chain_at(chains, sent)
        for state in chain:
            await client.publish(channel, orjson.dumps(to_tick(state, TZ)))
        sent += len(chain)
    return sent / (time.perf_counter() - began)


async def breakdown(
    publisher: TickPublisher, chains: Sequence[Chain], passes: int = 5
) -> dict[str, float]:
    """Microseconds per tick of each step, timed apart: serialise, offer, flush (no ``run``).

    Each pass goes once through ``chains``; the figure of each step is its median pass.
    """
    channel, latest = CHANNELS.options, CHANNELS.latest_options
    runs: dict[str, list[float]] = {"serialise_us": [], "offer_us": [], "flush_us": []}
    for _ in range(passes):
        spent = dict.fromkeys(runs, 0.0)
        ticks = 0
        for chain in chains:
            began = time.perf_counter()
            payloads = [orjson.dumps(to_tick(state, TZ)) for state in chain]
            serialised = time.perf_counter()
            for state, payload in zip(chain, payloads, strict=True):
                publisher.offer(channel, latest, str(state.instrument_token), payload)
            offered = time.perf_counter()
            while publisher.backlog:
                ticks += await publisher.flush()
            spent["serialise_us"] += serialised - began
            spent["offer_us"] += offered - serialised
            spent["flush_us"] += time.perf_counter() - offered
        for step, seconds in spent.items():
            runs[step].append(1e6 * seconds / max(ticks, 1))
    return {step: statistics.median(values) for step, values in runs.items()}


@dataclass(frozen=True, slots=True)
class Throughput:
    publisher: list[float]
    baseline: list[float]
    steps_us: dict[str, float]
    failed_flushes: int
    dropped: int

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
    runs: dict[str, list[float]] = {"publisher": [], "baseline": []}
    recorder = Recorder()
    try:
        async with publisher_for(url, recorder, breaker) as publisher:
            await baseline_rate(baseline_client, chains, seconds / 4)  # warm-up
            await publisher_rate(publisher, recorder, chains, seconds / 4)
            for r in range(rounds):
                order = ("baseline", "publisher") if r % 2 == 0 else ("publisher", "baseline")
                for name in order:
                    if name == "baseline":
                        rate = await baseline_rate(baseline_client, chains, seconds)
                    else:
                        rate = await publisher_rate(publisher, recorder, chains, seconds)
                    runs[name].append(rate)
            steps = await breakdown(publisher, chains)
    finally:
        await baseline_client.aclose()
    return Throughput(
        runs["publisher"], runs["baseline"], steps, recorder.failed_flushes, publisher.dropped
    )


# --- latency ------------------------------------------------------------------------------


def resp(*parts: bytes) -> bytes:
    """One command in the Redis protocol."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts)


def split_messages(data: bytes, head: bytes) -> tuple[list[bytes], int]:
    """Payloads of the complete pub/sub messages at the start of ``data``, and bytes used.

    Every message on the one subscribed channel starts with the same ``head``, up to the
    payload's length; parsing it by hand keeps the consumer cheap enough not to starve the
    publisher of CPU on a small machine (a redis-py subscriber needs most of a core).
    """
    payloads: list[bytes] = []
    pos = 0
    while data.startswith(head, pos):
        eol = data.find(b"\r\n", pos + len(head))
        if eol < 0:
            break
        end = eol + 2 + int(data[pos + len(head) : eol])
        if end + 2 > len(data):
            break
        payloads.append(data[eol + 2 : end])
        pos = end + 2
    if len(data) - pos >= len(head) and not data.startswith(head, pos):
        raise ValueError(f"not a message on the channel: {data[pos : pos + 40]!r}")
    return payloads, pos


def subscribe(port: int, channel: str, conn: Connection, timeout: float) -> None:
    """A consumer in its own process: (offered_at, received_at) of every tick until END.

    Both times are ``time.monotonic()``, CLOCK_MONOTONIC, one clock for the whole machine;
    a message's receive time is that of the read that completed it. The consumer's CPU
    seconds are reported too, since on a small machine it competes with the publisher.
    """
    name = channel.encode()
    head = b"*3\r\n$7\r\nmessage\r\n$%d\r\n%b\r\n$" % (len(name), name)
    offered: list[float] = []
    received: list[float] = []
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(resp(b"SUBSCRIBE", name))
        data = b""
        while not data.endswith(b":1\r\n"):  # the confirmation: from now on nothing is missed
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("redis-server closed the subscriber's connection")
            data += chunk
        conn.send("ready")
        cpu = time.process_time()
        sock.settimeout(0.5)
        data, done = b"", False
        while not done and time.monotonic() < deadline:
            try:
                chunk = sock.recv(1 << 18)
            except TimeoutError:
                continue
            now = time.monotonic()
            payloads, used = split_messages(data + chunk, head)
            data = (data + chunk)[used:]
            done = not chunk
            for payload in payloads:
                if payload == END:
                    done = True
                    break
                offered.append(orjson.loads(payload)["offered_at"])
                received.append(now)
        conn.send((offered, received, time.process_time() - cpu))


def offer_stamped(publisher: TickPublisher, chain: Chain, start: int, count: int) -> None:
    """``count`` ticks of ``chain`` from position ``start`` on, each carrying its offer time."""
    channel, latest = CHANNELS.options, CHANNELS.latest_options
    for i in range(start, start + count):
        state = chain[i % len(chain)]
        tick = to_tick(state, TZ)
        tick["offered_at"] = time.monotonic()
        publisher.offer(channel, latest, str(state.instrument_token), orjson.dumps(tick))


async def paced(
    publisher: TickPublisher, chains: Sequence[Chain], rate: float, seconds: float
) -> tuple[int, float, float]:
    """Offer ``rate`` ticks/s for ``seconds``: every 5 ms, the ticks that have fallen due.

    Returns the ticks offered, the seconds the offering took, and the longest the producer
    woke up past its slice. Latency counts from the offer, so a producer held up by the
    flushes that share its event loop (or by a busy machine) shows there, not in latency.
    """
    total = round(seconds * rate)
    offered, late, wake_at = 0, 0.0, 0.0
    began = time.monotonic()
    while offered < total:
        elapsed = time.monotonic() - began
        late = max(late, elapsed - wake_at)
        due = min(round(elapsed * rate), total) - offered
        if due > 0:
            offer_stamped(publisher, chain_at(chains, offered), offered, due)
            offered += due
        wake_at = (elapsed // SLICE_SECONDS + 1) * SLICE_SECONDS
        await asyncio.sleep(max(0.0, began + wake_at - time.monotonic()))
    return offered, time.monotonic() - began, late


@dataclass(frozen=True, slots=True)
class Window:
    """What the publisher saw in the measured window of a paced run."""

    latencies_ms: list[float]
    start: float
    offered_per_s: float
    achieved_per_s: float
    dropped: int  # by the breaker or a lost lease
    buffer_drops: int
    lost: int  # held after a failed flush, then superseded by a newer tick of the token
    failed_flushes: int
    late_ms: float


async def paced_window(
    url: str, breaker: Breaker, chains: Sequence[Chain], rate: float, seconds: float
) -> Window:
    """A short paced warm-up, then the measured window; ``run`` flushes throughout."""
    recorder = Recorder(keep=True)
    async with publisher_for(url, recorder, breaker) as publisher, running(publisher):
        warm, _, _ = await paced(publisher, chains, rate, min(1.0, seconds / 4))
        await drained(publisher, recorder, warm)
        recorder.latencies.clear()
        start = time.monotonic()
        offered, offering, late = await paced(publisher, chains, rate, seconds)
        await drained(publisher, recorder, warm + offered)
        until_published = time.monotonic() - start
    return Window(
        latencies_ms=[1000.0 * x for x in recorder.latencies],
        start=start,
        offered_per_s=offered / offering,
        achieved_per_s=len(recorder.latencies) / until_published,
        dropped=publisher.dropped,
        buffer_drops=recorder.buffer_drops,
        lost=warm + offered - gone(publisher, recorder),
        failed_flushes=recorder.failed_flushes,
        late_ms=1000.0 * late,
    )


@dataclass(frozen=True, slots=True)
class Latency:
    window: Window
    received_ms: list[float]
    subscriber_cpu: float  # fraction of one core the subscriber used


def latency(
    url: str, breaker: Breaker, chains: Sequence[Chain], rate: float, seconds: float
) -> Latency:
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    args = (
        urlsplit(url).port,
        CHANNELS.options,
        theirs,
        SUBSCRIBER_TIMEOUT + DRAIN_TIMEOUT + seconds,
    )
    consumer = context.Process(target=subscribe, args=args, daemon=True)
    consumer.start()
    try:
        if not ours.poll(SUBSCRIBER_TIMEOUT) or ours.recv() != "ready":
            raise TimeoutError("the subscriber did not start")
        began = time.monotonic()
        window = asyncio.run(paced_window(url, breaker, chains, rate, seconds))
        with redis.Redis.from_url(url) as client:
            client.publish(CHANNELS.options, END)
        if not ours.poll(SUBSCRIBER_TIMEOUT):
            raise TimeoutError("the subscriber did not report")
        sent_at, received_at, cpu_seconds = ours.recv()
        wall = time.monotonic() - began
    finally:
        consumer.join(timeout=5)
        if consumer.is_alive():
            consumer.kill()
            consumer.join(timeout=5)
    received_ms = [
        1000.0 * (r - s) for s, r in zip(sent_at, received_at, strict=True) if s >= window.start
    ]
    return Latency(window, received_ms, cpu_seconds / wall)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


# --- report -------------------------------------------------------------------------------


def report(
    args: argparse.Namespace, speed: Throughput, lat: Latency, greeks: dict[str, float], source: str
) -> None:
    publisher = statistics.median(speed.publisher)
    baseline = statistics.median(speed.baseline)
    paired, steps, window = speed.paired, speed.steps_us, lat.window
    p50, p99 = percentile(window.latencies_ms, 50), percentile(window.latencies_ms, 99)
    s50, s99 = percentile(lat.received_ms, 50), percentile(lat.received_ms, 99)
    verdict = "OK" if speed.ratio >= TARGET_RATIO else "MISSED"
    print(f"chain of {args.options} options; to_tick + orjson.dumps inside every timed loop")
    print(f"{args.rounds} rounds of {args.seconds}s per variant, interleaved (medians)")
    print(f"TickPublisher.run, SharedBreaker ({source}): {publisher:10,.0f} ticks/s")
    print(f"one awaited PUBLISH per tick (baseline):    {baseline:10,.0f} ticks/s")
    print(
        f"ratio {speed.ratio:.1f}x (rounds {min(paired):.1f}x..{max(paired):.1f}x), "
        f"target >= {TARGET_RATIO:.0f}x: {verdict}"
    )
    print(
        f"per tick: serialise {steps['serialise_us']:.1f} us, offer {steps['offer_us']:.1f} us, "
        f"flush {steps['flush_us']:.1f} us; {speed.failed_flushes} failed flushes, "
        f"{speed.dropped} dropped"
    )
    print(
        f"paced {args.rate:,.0f} ticks/s for {args.latency_seconds}s: offered "
        f"{window.offered_per_s:,.0f}/s, published {window.achieved_per_s:,.0f}/s, "
        f"producer woke up to {window.late_ms:.0f} ms late"
    )
    print(
        f"{window.failed_flushes} failed flushes; {window.dropped} dropped by the breaker, "
        f"{window.buffer_drops} by a full buffer, {window.lost} superseded after a failure"
    )
    print(
        f"offer -> pipeline done:  p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  "
        f"({len(window.latencies_ms)} ticks)"
    )
    print(
        f"offer -> subscriber:     p50 {s50:8.2f} ms  p99 {s99:8.2f} ms  "
        f"({len(lat.received_ms)} ticks; subscriber used {lat.subscriber_cpu:.0%} of a core)"
    )
    print(
        f"greeks, {args.greeks_options} options: {greeks['options_per_s']:,.0f} options/s, "
        f"{greeks['ratio']:.1f}x the scalar loop, {greeks['chain_ms']:.2f} ms a chain"
    )
    summary = {
        "ticks_per_s": round(publisher),
        "baseline_ticks_per_s": round(baseline),
        "ratio": round(speed.ratio, 2),
        "breaker": source,
        **{step: round(us, 2) for step, us in steps.items()},
        "p50_latency_ms": round(p50, 3),
        "p99_latency_ms": round(p99, 3),
        "subscriber_p50_latency_ms": round(s50, 3),
        "subscriber_p99_latency_ms": round(s99, 3),
        "offered_ticks_per_s": round(args.rate),
        "offered_measured_ticks_per_s": round(window.offered_per_s),
        "achieved_ticks_per_s": round(window.achieved_per_s),
        "failed_flushes": speed.failed_flushes + window.failed_flushes,
        "dropped": speed.dropped + window.dropped + window.buffer_drops + window.lost,
        "greeks_options_per_s": round(greeks["options_per_s"]),
        "greeks_ratio": round(greeks["ratio"], 2),
    }
    print(json.dumps(summary))


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
            store = fail_fast_client(server.url)
            with SharedBreaker(store, "bench-publish", BreakerConfig()) as breaker:
                run = throughput(server.url, breaker, chains, args.seconds, args.rounds)
                speed = asyncio.run(run)
                lat = latency(server.url, breaker, chains, args.rate, args.latency_seconds)
                source = breaker.source
            store.close()
        finally:
            server.stop()
    greeks = measure_greeks(args.greeks_options, args.greeks_seconds)
    report(args, speed, lat, greeks, source)


if __name__ == "__main__":
    main()
