"""Publish throughput through the shared breaker, against no breaker and a per-call-Redis breaker.

The publisher asks ``can_execute()`` for every tick and reports one outcome per pipelined
batch, so the shared breaker's price is a memory read per tick. The baseline is the same
pipelined PUBLISH batches with no breaker at all; the anchor is pybreaker with its Redis
storage, called once per tick as it is designed to be, which pays Redis round trips on every
call. All three run against one redis-server this script starts on a free port and stops,
in rounds interleaved (and rotated) so they see the same machine state; figures are medians.
The last line printed is one JSON object.

    python bench/breaker.py [--seconds 0.7] [--rounds 7] [--batch 100]
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pybreaker
import redis

from tickfleet.breaker import BreakerConfig, SharedBreaker, connect_store

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD_PCT = 5.0
CHANNEL = "ticker:nifty:options"

Variant = Callable[[list[bytes], float], float]


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


def ticks_per_second(
    publish_batch: Callable[[list[bytes]], int], ticks: list[bytes], seconds: float
) -> float:
    sent = 0
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        sent += publish_batch(ticks)
    return sent / (time.perf_counter() - began)


def no_breaker(client: redis.Redis) -> Variant:
    def batch(ticks: list[bytes]) -> int:
        pipe = client.pipeline(transaction=False)
        for tick in ticks:
            pipe.publish(CHANNEL, tick)
        pipe.execute()
        return len(ticks)

    return lambda ticks, seconds: ticks_per_second(batch, ticks, seconds)


def shared_breaker(client: redis.Redis, breaker: SharedBreaker) -> Variant:
    def batch(ticks: list[bytes]) -> int:
        pipe = client.pipeline(transaction=False)
        queued = 0
        for tick in ticks:
            if breaker.can_execute():
                pipe.publish(CHANNEL, tick)
                queued += 1
        pipe.execute()
        breaker.record_success()
        return queued

    return lambda ticks, seconds: ticks_per_second(batch, ticks, seconds)


def pybreaker_redis(client: redis.Redis, state_client: redis.Redis) -> Variant:
    storage = pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, state_client, namespace="bench")
    guard = pybreaker.CircuitBreaker(fail_max=10, reset_timeout=60, state_storage=storage)

    def batch(ticks: list[bytes]) -> int:
        pipe = client.pipeline(transaction=False)
        for tick in ticks:
            guard.call(pipe.publish, CHANNEL, tick)
        pipe.execute()
        return len(ticks)

    return lambda ticks, seconds: ticks_per_second(batch, ticks, seconds)


def can_execute_ns(breaker: SharedBreaker, calls: int = 1_000_000, rounds: int = 5) -> float:
    check = breaker.can_execute
    runs = []
    for _ in range(rounds):
        began = time.perf_counter_ns()
        for _ in range(calls):
            check()
        runs.append((time.perf_counter_ns() - began) / calls)
    return statistics.median(runs)


def interleaved(
    variants: dict[str, Variant], ticks: list[bytes], seconds: float, rounds: int
) -> dict[str, list[float]]:
    """Run every variant once per round, rotating the order so none always goes first."""
    names = list(variants)
    for name in names:
        variants[name](ticks, seconds / 4)  # warm-up
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(variants[name](ticks, seconds))
    return results


def measure(url: str, batch: int, seconds: float, rounds: int) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    state_client = redis.Redis.from_url(url)
    with SharedBreaker(connect_store(url), "bench", BreakerConfig()) as breaker:
        variants = {
            "none": no_breaker(client),
            "shared": shared_breaker(client, breaker),
            "pybreaker": pybreaker_redis(client, state_client),
        }
        runs = interleaved(variants, make_ticks(batch), seconds, rounds)
        nanoseconds = can_execute_ns(breaker)
        source = breaker.source
    client.close()
    state_client.close()
    paired = [s / n for s, n in zip(runs["shared"], runs["none"], strict=True)]
    return {
        "none": statistics.median(runs["none"]),
        "shared": statistics.median(runs["shared"]),
        "pybreaker": statistics.median(runs["pybreaker"]),
        "overhead_pct": (1.0 - statistics.median(paired)) * 100.0,
        "can_execute_ns": nanoseconds,
        "source": source,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.7, help="per variant per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-breaker-") as workdir:
        server = start_redis(Path(workdir))
        try:
            figures = measure(server.url, args.batch, args.seconds, args.rounds)
        finally:
            server.stop()

    ratio = figures["shared"] / figures["pybreaker"]
    print(f"pipelined PUBLISH, batches of {args.batch}, {args.rounds} rounds x {args.seconds}s")
    print(f"no breaker:                      {figures['none']:12,.0f} ticks/s")
    print(f"SharedBreaker ({figures['source']}):         {figures['shared']:12,.0f} ticks/s")
    print(f"pybreaker + CircuitRedisStorage: {figures['pybreaker']:12,.0f} ticks/s")
    print(f"SharedBreaker overhead vs none:  {figures['overhead_pct']:11.2f} %")
    print(f"SharedBreaker vs pybreaker:      {ratio:11.1f} x")
    print(f"can_execute():                   {figures['can_execute_ns']:11.1f} ns/call")
    verdict = "OK" if figures["overhead_pct"] < TARGET_OVERHEAD_PCT else "MISSED"
    print(f"target < {TARGET_OVERHEAD_PCT:.0f} % overhead: {verdict}")
    print(
        json.dumps(
            {
                "no_breaker_ticks_per_s": round(figures["none"]),
                "shared_breaker_ticks_per_s": round(figures["shared"]),
                "overhead_pct": round(figures["overhead_pct"], 2),
                "pybreaker_redis_ticks_per_s": round(figures["pybreaker"]),
                "ratio_vs_pybreaker": round(ratio, 2),
                "can_execute_ns": round(figures["can_execute_ns"], 1),
                "batch": args.batch,
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
