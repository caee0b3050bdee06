"""Publish throughput through the shared breaker, against no breaker and a per-call-Redis breaker.

The publisher asks ``can_execute()`` for every tick and reports one outcome per pipelined
batch, so the shared breaker's price is a memory read per tick. The baseline is the same
pipelined PUBLISH batches with no breaker at all; the anchor is pybreaker with its Redis
storage, called once per tick as it is designed to be, which pays Redis round trips on every
call. All three publish with an asyncio client on one event loop, where the shared breaker's
sync loop and pub/sub listener also run, as in a stream; against one redis-server this
script starts on a free port and stops. In every round the baseline and the shared breaker
alternate batch by batch, then the anchor runs; figures are medians over rounds. The last
line printed is one JSON object.

    python bench/breaker.py [--seconds 1.5] [--rounds 7] [--batch 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import pybreaker
import redis
import redis.asyncio as aioredis

from tickfleet.breaker import BreakerConfig, SharedBreaker
from tickfleet.runtime.connections import fail_fast_async_client

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD_PCT = 2.0
CHANNEL = "ticker:nifty:options"


class Server(Protocol):
    url: str
    port: int

    def stop(self) -> None: ...


def start_redis(workdir: Path) -> Server:
    """The tests' RedisServer: a throw-away redis-server on a free port."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    support = importlib.import_module("tests.support.redis_server")
    server: Server = support.RedisServer(workdir).start()
    return server


def make_ticks(batch: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "instrument_token": 12_000_000 + i,
                "tradingsymbol": f"NIFTY25JAN{24000 + 50 * i}CE",
                "last_price": 101.25 + i,
                "volume": 1500 + i,
                "oi": 42_000,
                "iv": 0.131,
                "delta": 0.52,
                "timestamp": "2025-01-02T10:15:00+05:30",
                "is_mock": True,
            }
        ).encode()
        for i in range(batch)
    ]


Batch = Callable[[list[bytes]], Awaitable[int]]


def no_breaker(client: aioredis.Redis) -> Batch:
    async def batch(ticks: list[bytes]) -> int:
        pipe = client.pipeline(transaction=False)
        for tick in ticks:
            pipe.publish(CHANNEL, tick)
        await pipe.execute()
        return len(ticks)

    return batch


def shared_breaker(client: aioredis.Redis, breaker: SharedBreaker) -> Batch:
    async def batch(ticks: list[bytes]) -> int:
        pipe = client.pipeline(transaction=False)
        queued = 0
        for tick in ticks:
            if breaker.can_execute():
                pipe.publish(CHANNEL, tick)
                queued += 1
        await pipe.execute()
        breaker.record_success()
        return queued

    return batch


def pybreaker_redis(client: aioredis.Redis, state_client: redis.Redis) -> Batch:
    """pybreaker's Redis storage is synchronous: every call blocks the loop for its round trips."""
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, state_client, namespace="bench")
    guard = pybreaker.CircuitBreaker(fail_max=10, reset_timeout=60, state_storage=storage)

    async def batch(ticks: list[bytes]) -> int:
        pipe = client.pipeline(transaction=False)
        for tick in ticks:
            guard.call(pipe.publish, CHANNEL, tick)
        await pipe.execute()
        return len(ticks)

    return batch


async def alternating(
    batches: dict[str, Batch], ticks: list[bytes], seconds: float
) -> dict[str, float]:
    """Ticks/s of each variant, run one batch each in turn (order flipped every cycle).

    Alternating batch by batch exposes every variant to the same moments of machine noise,
    which matters when the difference sought is a few per cent.
    """
    sent = dict.fromkeys(batches, 0)
    spent = dict.fromkeys(batches, 0.0)
    order = list(batches)
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for name in order:
            began = time.perf_counter()
            sent[name] += await batches[name](ticks)
            spent[name] += time.perf_counter() - began
        order.reverse()
    return {name: sent[name] / spent[name] for name in batches}


def can_execute_ns(breaker: SharedBreaker, calls: int = 1_000_000, rounds: int = 5) -> float:
    check = breaker.can_execute
    runs = []
    for _ in range(rounds):
        began = time.perf_counter_ns()
        for _ in range(calls):
            check()
        runs.append((time.perf_counter_ns() - began) / calls)
    return statistics.median(runs)


async def rounds_of(
    batches: dict[str, Batch], anchor: Batch, ticks: list[bytes], seconds: float, rounds: int
) -> dict[str, list[float]]:
    """Per round: the compared variants alternating, then the (much slower) anchor alone."""
    await alternating(batches, ticks, seconds / 4)  # warm-up
    await alternating({"anchor": anchor}, ticks, seconds / 8)
    runs: dict[str, list[float]] = {name: [] for name in (*batches, "anchor")}
    for _ in range(rounds):
        for name, rate in (await alternating(batches, ticks, seconds)).items():
            runs[name].append(rate)
        runs["anchor"].append((await alternating({"anchor": anchor}, ticks, seconds / 2))["anchor"])
    return runs


@asynccontextmanager
async def running(breaker: SharedBreaker) -> AsyncIterator[SharedBreaker]:
    """The breaker synced and running on this loop, as a stream runs it; stopped afterwards."""
    await breaker.sync_once()
    syncing = asyncio.create_task(breaker.run())
    try:
        yield breaker
    finally:
        syncing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await syncing


async def measure(url: str, batch: int, seconds: float, rounds: int) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        client = aioredis.Redis.from_url(url)
        stack.push_async_callback(client.aclose)
        store = fail_fast_async_client(url, 0.5)
        stack.push_async_callback(store.aclose)
        state_client = redis.Redis.from_url(url)
        stack.callback(state_client.close)
        breaker = await stack.enter_async_context(
            running(SharedBreaker(store, "bench", BreakerConfig()))
        )
        compared = {"none": no_breaker(client), "shared": shared_breaker(client, breaker)}
        anchor = pybreaker_redis(client, state_client)
        runs = await rounds_of(compared, anchor, make_ticks(batch), seconds, rounds)
        nanoseconds = can_execute_ns(breaker)
        source = breaker.source
    paired = [s / n for s, n in zip(runs["shared"], runs["none"], strict=True)]
    return {
        "none": statistics.median(runs["none"]),
        "shared": statistics.median(runs["shared"]),
        "pybreaker": statistics.median(runs["anchor"]),
        "overhead_pct": (1.0 - statistics.median(paired)) * 100.0,
        "can_execute_ns": nanoseconds,
        "source": source,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="per round, both compared")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-breaker-") as workdir:
        server = start_redis(Path(workdir))
        try:
            figures = asyncio.run(measure(server.url, args.batch, args.seconds, args.rounds))
        finally:
            server.stop()

    ratio = figures["shared"] / figures["pybreaker"]
    print(f"pipelined PUBLISH, batches of {args.batch}, {args.rounds} rounds (medians)")
    print(f"no breaker:                      {figures['none']:12,.0f} ticks/s")
    print(f"SharedBreaker ({figures['source']}):         {figures['shared']:12,.0f} ticks/s")
    print(f"pybreaker + CircuitRedisStorage: {figures['pybreaker']:12,.0f} ticks/s")
    print(f"SharedBreaker overhead vs none:  {figures['overhead_pct']:11.2f} %")
    print(f"SharedBreaker vs pybreaker:      {ratio:11.1f} x")
    print(f"can_execute():                   {figures['can_execute_ns']:11.1f} ns/call")
    verdict = "OK" if figures["overhead_pct"] <= TARGET_OVERHEAD_PCT else "MISSED"
    print(f"target <= {TARGET_OVERHEAD_PCT:.0f} % overhead: {verdict}")
    print(
        json.dumps(
            {
                "no_breaker_ticks_per_s": round(figures["none"]),
                "shared_breaker_ticks_per_s": round(figures["shared"]),
                "overhead_pct": round(figures["overhead_pct"], 2),
                "pybreaker_redis_ticks_per_s": round(figures["pybreaker"]),
                "ratio_vs_pybreaker": round(ratio, 2),
                "can_execute_ns": round(figures["can_execute_ns"], 1),
                "breaker_source": figures["source"],
                "batch": args.batch,
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
