"""Worker processes sharing one state store: trip propagation and the fleet's probe budget."""

from __future__ import annotations

import asyncio
import queue
import time
from multiprocessing.queues import Queue
from typing import Any

import pytest

from tests.integration.breaker import fleet_worker
from tests.integration.breaker.running import shared_breaker
from tests.integration.breaker.spawning import Spawner
from tickfleet.breaker import BreakerConfig, CircuitState

pytestmark = [pytest.mark.timeout(90), pytest.mark.processes]


async def collect(results: Queue[Any], count: int, timeout: float) -> list[Any]:
    """Up to ``count`` results within ``timeout``, polled so this process's loop keeps running."""
    deadline = time.monotonic() + timeout
    found: list[Any] = []
    while len(found) < count and time.monotonic() < deadline:
        try:
            found.append(results.get_nowait())
        except queue.Empty:
            await asyncio.sleep(0.005)
    return found


def test_a_trip_in_one_process_reaches_another_within_a_second(
    redis_url: str, spawn: Spawner
) -> None:
    # Polling every 3 s could not meet the deadline: this measures the pub/sub path.
    config = BreakerConfig(failure_threshold=5, sync_seconds=3.0)
    context = spawn.context
    results: Queue[Any] = context.Queue()
    ready_a, ready_b, go = context.Event(), context.Event(), context.Event()
    spawn(fleet_worker.watch_for_trip, redis_url, config, ready_b, results, 30.0)
    spawn(fleet_worker.trip_on_signal, redis_url, config, ready_a, go, results, 30.0)
    assert ready_a.wait(30) and ready_b.wait(30)

    go.set()
    events = {event[0]: event for event in asyncio.run(collect(results, 2, timeout=10))}

    assert set(events) == {"tripped", "seen"}
    assert events["tripped"][2] == CircuitState.OPEN
    latency = events["seen"][1] - events["tripped"][1]
    print(f"trip seen by the other process after {latency * 1000:.1f} ms")
    assert 0 <= latency < 1.0


def test_eight_processes_share_the_half_open_probe_budget(redis_url: str, spawn: Spawner) -> None:
    config = BreakerConfig(
        failure_threshold=1,
        recovery_timeout=1.0,
        half_open_max_attempts=3,
        sync_seconds=0.5,
        probe_reservation_ttl=30.0,
    )
    context = spawn.context
    results: Queue[Any] = context.Queue()
    readies = [context.Event() for _ in range(8)]
    for ready in readies:
        spawn(fleet_worker.count_probes, redis_url, config, ready, results, 30.0, 3.0)
    assert all(ready.wait(30) for ready in readies)

    async def trip_and_collect() -> list[Any]:
        async with shared_breaker(redis_url, config) as tripper:
            tripper.record_failure(ConnectionError("refused"))
            return await collect(results, 8, timeout=20)

    probes = [event[1] for event in asyncio.run(trip_and_collect())]

    print(f"probes let through per process: {probes}")
    assert len(probes) == 8
    assert sum(probes) == config.half_open_max_attempts
    assert max(probes) == 1


def test_a_crashed_probers_reservation_expires_and_probing_resumes(
    redis_url: str, spawn: Spawner
) -> None:
    config = BreakerConfig(
        failure_threshold=1,
        recovery_timeout=0.5,
        half_open_max_attempts=1,
        sync_seconds=0.2,
        probe_reservation_ttl=1.5,
    )
    context = spawn.context
    results: Queue[Any] = context.Queue()
    ready = context.Event()
    prober = spawn(fleet_worker.probe_then_hang, redis_url, config, ready, results, 30.0)
    assert ready.wait(30)

    async def survive() -> tuple[float, float | None]:
        async with shared_breaker(redis_url, config) as survivor:
            survivor.record_failure(ConnectionError("refused"))
            (event,) = await collect(results, 1, timeout=10)
            prober.kill()
            prober.join(timeout=10)
            deadline = time.monotonic() + config.probe_reservation_ttl + 3.0
            while time.monotonic() < deadline:
                if survivor.can_execute():
                    return event[1], time.time()
                await asyncio.sleep(0.005)
            return event[1], None

    probing_since, resumed_at = asyncio.run(survive())

    assert resumed_at is not None, "probing never resumed"
    waited = resumed_at - probing_since
    print(f"probing resumed {waited:.2f} s after the prober took the fleet's only probe")
    assert config.probe_reservation_ttl - 0.25 <= waited <= config.probe_reservation_ttl + 1.5
