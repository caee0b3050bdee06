"""Tick publishing against a real Redis: throughput, latency under load, and chain greeks.

1. Throughput. Option ticks of a simulated chain (``MockOptionBook``) are serialised the
   way a feed does it (``OptionPayload.tick``, inside the timed loop) and offered
   to ``TickPublisher`` while its ``run`` sends them (one script call per batch: a PUBLISH
   per tick plus the latest-tick HSETs), guarded by a running ``SharedBreaker`` on the same
   Redis. Two baselines are timed in the same run, rounds interleaved, medians reported:
   the predecessor's way (serialise, then one awaited PUBLISH per tick with redis.asyncio,
   no latest-tick hash), and the same publisher with no breaker at all, which gives the
   breaker's closed-path overhead. The superset payload (the predecessor's fields and
   tickfleet's) is also timed against tickfleet 0.1's smaller payload. The microseconds
   per tick of serialising, offering and sending are also timed apart.
2. Latency. A producer offers ticks paced evenly at each ``--rates`` value (the ticks due,
   every millisecond) while ``run`` sends. Latency is from ``offer`` to the script's reply,
   taken unbucketed from the publisher's own observations, and from ``offer`` to a
   subscriber in its own process, which timestamps every message against the offer time
   carried in the payload; p50, p99 and p99.9 of both.
3. Greeks. ``bench.greeks.measure_greeks`` on a 5000-option chain.

redis-server is started on a free loopback port and stopped by this script. The last line
printed is one JSON object.

    python bench/publish.py [--options 400] [--seconds 1.5] [--rounds 5] [--rates 20000 50000]
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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.breaker import start_redis  # noqa: E402
from bench.greeks import measure_greeks  # noqa: E402
from tickfleet.breaker import (  # noqa: E402
    Breaker,
    BreakerConfig,
    BreakerSnapshot,
    CircuitState,
    Listener,
    SharedBreaker,
    Source,
)
from tickfleet.instruments import Instrument  # noqa: E402
from tickfleet.market.contracts import InstrumentType  # noqa: E402
from tickfleet.market.options import (  # noqa: E402
    ChainSpec,
    MockOptionBook,
    MockOptionSnapshot,
    OptionContract,
)
from tickfleet.market.snapshot import MockUnderlyingSnapshot  # noqa: E402
from tickfleet.metrics.buffer import MetricsBuffer  # noqa: E402
from tickfleet.metrics.catalog import Labels, Metrics  # noqa: E402
from tickfleet.runtime.connections import fail_fast_async_client  # noqa: E402
from tickfleet.runtime.heap import tune_for_streaming  # noqa: E402
from tickfleet.stream.feeds.simulated.options import option_tick  # noqa: E402
from tickfleet.stream.publisher import Fence, PublisherConfig, TickPublisher  # noqa: E402
from tickfleet.ticks.channels import Channels  # noqa: E402
from tickfleet.ticks.payloads import OptionPayload, Stamp, iso_timestamp  # noqa: E402

TARGET_RATIO = 20.0
TARGET_P99_MS = 2.0
TARGET_OVERHEAD = 0.02
TARGET_SUPERSET_COST = 0.10
TZ = ZoneInfo("Asia/Kolkata")
SPOT = 24_000.0
CHANNELS = Channels()
LATENCY = "tick_publish_latency_seconds"
FAILURES = "redis_publish_failures_total"
BUFFER_DROPS = "publish_buffer_drops_total"
END = b"end"
SLICE_SECONDS = 0.001
DRAIN_TIMEOUT = 20.0
SUBSCRIBER_TIMEOUT = 15.0

Chain = list[MockOptionSnapshot]
Serialise = Callable[[MockOptionSnapshot, Stamp], bytes]

PAYLOADS: dict[int, OptionPayload] = {}  # the superset builder of every benchmarked contract


def superset(state: MockOptionSnapshot, stamp: Stamp) -> bytes:
    """What a simulated feed publishes: the predecessor's fields and tickfleet's."""
    return option_tick(PAYLOADS[state.instrument_token], stamp, state)


def legacy(state: MockOptionSnapshot, stamp: Stamp) -> bytes:
    """tickfleet 0.1's option tick, before the predecessor's fields: the superset's baseline."""
    return orjson.dumps(
        {
            "instrument_token": state.instrument_token,
            "tradingsymbol": state.tradingsymbol,
            "instrument_type": state.instrument_type,
            "strike": state.strike,
            "expiry": state.expiry.isoformat(),
            "last_price": state.last_price,
            "volume": state.volume,
            "oi": state.oi,
            "iv": state.iv,
            "delta": state.delta,
            "gamma": state.gamma,
            "theta": state.theta,
            "vega": state.vega,
            "timestamp": iso_timestamp(state.timestamp, TZ),
            "is_mock": True,
        }
    )


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


def row_of(contract: OptionContract) -> Instrument:
    return Instrument(
        contract.instrument_token, contract.instrument_token >> 8, contract.tradingsymbol,
        "NIFTY", "NIFTY", 0.0, contract.expiry, contract.strike, 0.05, 65,
        contract.instrument_type, "NFO-OPT", "NFO",
    )  # fmt: skip


def make_chains(n_options: int, n_ticks: int, seed: int = 11) -> list[Chain]:
    """``n_ticks`` successive ticks of the whole chain, the index walking between them."""
    now = datetime.now(TZ)
    book = MockOptionBook(ChainSpec(), max_size=max(n_options, 1))
    held = contracts(n_options, now.date())
    book.ensure(held)
    PAYLOADS.update((c.instrument_token, OptionPayload(row_of(c))) for c in held)
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


class NoBreaker:
    """No protection at all: the baseline of the breaker's closed-path cost."""

    state = CircuitState.CLOSED
    failure_count = 0
    opened_at = None
    source: Source = "local"

    def can_execute(self) -> bool:
        return True

    def record_success(self) -> None:
        pass

    def record_failure(self, exc: BaseException | None = None) -> None:
        pass

    def add_listener(self, listener: Listener) -> None:
        pass

    def snapshot(self) -> BreakerSnapshot:
        return BreakerSnapshot(state="closed", failure_count=0, opened_at=None, source="local")

    async def run(self) -> None:
        await asyncio.Event().wait()


@contextlib.asynccontextmanager
async def shared_breaker(url: str) -> AsyncIterator[SharedBreaker]:
    """A ``SharedBreaker`` on its own client, running (synced) for the block, as in a stream."""
    async with fail_fast_async_client(url, 2.0) as client:
        breaker = SharedBreaker(client, "bench-publish", BreakerConfig())
        await breaker.sync_once()
        task = asyncio.create_task(breaker.run())
        try:
            yield breaker
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def publisher_for(
    url: str, metrics: Metrics, breaker: Breaker
) -> AsyncIterator[TickPublisher]:
    """A publisher configured like a stream's, on its own fail-fast client, fenced by
    its lease's epoch as a stream's is."""
    timeout = PublisherConfig().timeout_seconds
    fence = Fence(CHANNELS.fence("bench"), 1, lambda newer: None)
    # as tickfleet.runtime.connections.stream_clients builds the publish target
    async with fail_fast_async_client(url, timeout, read_timeout=False) as client:
        yield TickPublisher(
            client, "bench", metrics, PublisherConfig(), breaker, lambda: True, fence
        )


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
    settle = PublisherConfig().timeout_seconds
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


def offer_chain(publisher: TickPublisher, chain: Chain, serialise: Serialise) -> None:
    """What a feed does on every tick: serialise each option, hand it to the publisher."""
    channel, latest = CHANNELS.options, CHANNELS.latest_options
    stamp = stamp_of(chain)
    for state in chain:
        publisher.offer(channel, latest, str(state.instrument_token), serialise(state, stamp))


def stamp_of(chain: Chain) -> Stamp:
    """A chain tick's time, made once for all its options, as a feed makes it."""
    return Stamp.of(chain[0].timestamp, TZ)


async def publisher_rate(
    publisher: TickPublisher,
    recorder: Recorder,
    chains: Sequence[Chain],
    seconds: float,
    serialise: Serialise = superset,
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
            offer_chain(publisher, chain, serialise)
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
        stamp = stamp_of(chain)
        for state in chain:
            await client.publish(channel, superset(state, stamp))
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
            stamp = stamp_of(chain)
            payloads = [superset(state, stamp) for state in chain]
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
    publisher: list[float]  # superset payload, with the running SharedBreaker
    unguarded: list[float]  # the same publisher with no breaker
    legacy: list[float]  # tickfleet 0.1's smaller payload, with the breaker
    baseline: list[float]  # one awaited PUBLISH per tick
    steps_us: dict[str, float]
    failed_flushes: int
    dropped: int

    @property
    def ratio(self) -> float:
        return statistics.median(self.publisher) / statistics.median(self.baseline)

    @property
    def paired(self) -> list[float]:
        return [p / b for p, b in zip(self.publisher, self.baseline, strict=True)]

    @property
    def breaker_overhead(self) -> float:
        """Throughput the breaker costs, median of paired rounds (negative: within noise)."""
        return _paired_cost(self.publisher, self.unguarded)

    @property
    def superset_cost(self) -> float:
        """Throughput the superset payload costs against the old one, paired rounds."""
        return _paired_cost(self.publisher, self.legacy)


def _paired_cost(measured: list[float], reference: list[float]) -> float:
    return statistics.median(1.0 - m / r for m, r in zip(measured, reference, strict=True))


async def throughput(url: str, chains: Sequence[Chain], seconds: float, rounds: int) -> Throughput:
    runs: dict[str, list[float]] = {"publisher": [], "unguarded": [], "legacy": [], "baseline": []}
    recorder, plain = Recorder(), Recorder()
    async with (
        aioredis.Redis.from_url(url) as baseline_client,
        shared_breaker(url) as breaker,
        publisher_for(url, recorder, breaker) as publisher,
        publisher_for(url, plain, NoBreaker()) as unguarded,
    ):
        variants: dict[str, Callable[[], Awaitable[float]]] = {
            "publisher": lambda: publisher_rate(publisher, recorder, chains, seconds),
            "unguarded": lambda: publisher_rate(unguarded, plain, chains, seconds),
            "legacy": lambda: publisher_rate(publisher, recorder, chains, seconds, legacy),
            "baseline": lambda: baseline_rate(baseline_client, chains, seconds),
        }
        for warm_up in variants.values():
            await warm_up()
        names = list(variants)
        for r in range(rounds):
            for name in names[r % 4 :] + names[: r % 4]:  # rotate who goes first
                runs[name].append(await variants[name]())
        steps = await breakdown(publisher, chains)
    return Throughput(
        runs["publisher"],
        runs["unguarded"],
        runs["legacy"],
        runs["baseline"],
        steps,
        recorder.failed_flushes,
        publisher.dropped,
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
        stamp = Stamp.of(state.timestamp, TZ)
        payload = superset(state, stamp)[:-1] + b',"offered_at":%r}' % time.monotonic()
        publisher.offer(channel, latest, str(state.instrument_token), payload)


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


async def paced_window(url: str, chains: Sequence[Chain], rate: float, seconds: float) -> Window:
    """A short paced warm-up, then the measured window; ``run`` sends throughout."""
    recorder = Recorder(keep=True)
    async with (
        shared_breaker(url) as breaker,
        publisher_for(url, recorder, breaker) as publisher,
        running(publisher),
    ):
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


def latency(url: str, chains: Sequence[Chain], rate: float, seconds: float) -> Latency:
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
        window = asyncio.run(paced_window(url, chains, rate, seconds))
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


def quantiles(values: Sequence[float]) -> tuple[float, float, float]:
    return percentile(values, 50), percentile(values, 99), percentile(values, 99.9)


def report_latency(rate: float, seconds: float, lat: Latency) -> dict[str, float]:
    window = lat.window
    r50, r99, r999 = quantiles(window.latencies_ms)
    s50, s99, s999 = quantiles(lat.received_ms)
    verdict = "OK" if r99 <= TARGET_P99_MS and s99 <= TARGET_P99_MS else "MISSED"
    print(
        f"paced {rate:,.0f} ticks/s for {seconds}s: offered {window.offered_per_s:,.0f}/s, "
        f"published {window.achieved_per_s:,.0f}/s, producer woke up to "
        f"{window.late_ms:.1f} ms late; {window.failed_flushes} failed sends, "
        f"{window.dropped + window.buffer_drops + window.lost} dropped"
    )
    print(
        f"  offer -> script reply: p50 {r50:6.3f} ms  p99 {r99:6.3f} ms  p99.9 {r999:6.3f} ms"
        f"  ({len(window.latencies_ms)} ticks)"
    )
    print(
        f"  offer -> subscriber:   p50 {s50:6.3f} ms  p99 {s99:6.3f} ms  p99.9 {s999:6.3f} ms"
        f"  ({len(lat.received_ms)} ticks; subscriber used {lat.subscriber_cpu:.0%} of a core)"
        f"  p99 target <= {TARGET_P99_MS:g} ms: {verdict}"
    )
    key = f"{rate / 1000:g}k"
    return {
        f"offered_{key}_per_s": round(window.offered_per_s),
        f"achieved_{key}_per_s": round(window.achieved_per_s),
        f"reply_p50_ms_{key}": round(r50, 3),
        f"reply_p99_ms_{key}": round(r99, 3),
        f"reply_p999_ms_{key}": round(r999, 3),
        f"subscriber_p50_ms_{key}": round(s50, 3),
        f"subscriber_p99_ms_{key}": round(s99, 3),
        f"subscriber_p999_ms_{key}": round(s999, 3),
        f"dropped_{key}": window.dropped + window.buffer_drops + window.lost,
    }


def report_throughput(args: argparse.Namespace, speed: Throughput) -> dict[str, float]:
    publisher = statistics.median(speed.publisher)
    unguarded = statistics.median(speed.unguarded)
    baseline = statistics.median(speed.baseline)
    paired, steps = speed.paired, speed.steps_us
    overhead = speed.breaker_overhead
    print(f"chain of {args.options} options; serialising every tick inside every timed loop")
    print(f"{args.rounds} rounds of {args.seconds}s per variant, interleaved (medians)")
    print(f"TickPublisher.run, SharedBreaker running: {publisher:10,.0f} ticks/s")
    print(f"TickPublisher.run, no breaker:           {unguarded:10,.0f} ticks/s")
    legacy_rate = statistics.median(speed.legacy)
    print(f"TickPublisher.run, 0.1's smaller payload: {legacy_rate:10,.0f} ticks/s")
    print(f"one awaited PUBLISH per tick (baseline): {baseline:10,.0f} ticks/s")
    print(
        f"ratio {speed.ratio:.1f}x (rounds {min(paired):.1f}x..{max(paired):.1f}x), "
        f"target >= {TARGET_RATIO:.0f}x: {'OK' if speed.ratio >= TARGET_RATIO else 'MISSED'}"
    )
    print(
        f"breaker closed-path overhead {overhead:.1%} (target <= {TARGET_OVERHEAD:.0%}: "
        f"{'OK' if overhead <= TARGET_OVERHEAD else 'MISSED'})"
    )
    cost = speed.superset_cost
    print(
        f"superset payload costs {cost:.1%} of throughput against 0.1's (target <= "
        f"{TARGET_SUPERSET_COST:.0%}: {'OK' if cost <= TARGET_SUPERSET_COST else 'MISSED'})"
    )
    print(
        f"per tick: serialise {steps['serialise_us']:.1f} us, offer {steps['offer_us']:.1f} us, "
        f"send {steps['flush_us']:.1f} us; {speed.failed_flushes} failed sends, "
        f"{speed.dropped} dropped"
    )
    return {
        "ticks_per_s": round(publisher),
        "baseline_ticks_per_s": round(baseline),
        "ratio": round(speed.ratio, 2),
        "unguarded_ticks_per_s": round(unguarded),
        "breaker_overhead": round(overhead, 4),
        "legacy_payload_ticks_per_s": round(legacy_rate),
        "superset_cost": round(cost, 4),
        **{step: round(us, 2) for step, us in steps.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--options", type=int, default=400, help="options in the ticked chain")
    parser.add_argument("--seconds", type=float, default=1.5, help="per round and variant")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--rates", type=float, nargs="+", default=[20_000.0, 50_000.0])
    parser.add_argument("--latency-seconds", type=float, default=6.0)
    parser.add_argument("--greeks-options", type=int, default=5000)
    parser.add_argument("--greeks-seconds", type=float, default=4.0)
    args = parser.parse_args()

    chains = make_chains(args.options, 8)
    tune_for_streaming()  # as a stream process does
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as workdir:
        server = start_redis(Path(workdir))
        try:
            # Latency first: the throughput rounds leave millions of objects' worth of
            # collector bookkeeping behind, which a stream process never accumulates.
            lats = {r: latency(server.url, chains, r, args.latency_seconds) for r in args.rates}
            speed = asyncio.run(throughput(server.url, chains, args.seconds, args.rounds))
        finally:
            server.stop()
    greeks = measure_greeks(args.greeks_options, args.greeks_seconds)
    summary = report_throughput(args, speed)
    for rate, lat in lats.items():
        summary.update(report_latency(rate, args.latency_seconds, lat))
    print(
        f"greeks, {args.greeks_options} options: {greeks['options_per_s']:,.0f} options/s, "
        f"{greeks['ratio']:.1f}x the scalar loop, {greeks['chain_ms']:.2f} ms a chain"
    )
    summary["greeks_options_per_s"] = round(greeks["options_per_s"])
    summary["greeks_ratio"] = round(greeks["ratio"], 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
