"""Bodies of the worker processes the fleet tests spawn: each is bounded by a deadline.

Each process runs its breaker on an event loop of its own (``asyncio.run``), as a stream
process does; waiting on the test's events and queues polls, so the loop never blocks.
"""

from __future__ import annotations

import asyncio
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from tests.integration.breaker.running import shared_breaker
from tickfleet.breaker import BreakerConfig, CircuitState, SharedBreaker


async def wait_for_event(event: Event, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not event.is_set():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True


async def wait_until_tripped(breaker: SharedBreaker, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if breaker.state is not CircuitState.CLOSED:
            return True
        await asyncio.sleep(0.001)
    return False


def trip_on_signal(
    url: str, config: BreakerConfig, ready: Event, go: Event, results: Queue[object], seconds: float
) -> None:
    """Trip the breaker when told to; report the wall time just before the tripping failure."""

    async def body() -> None:
        async with shared_breaker(url, config) as breaker:
            ready.set()
            if not await wait_for_event(go, seconds):
                return
            for _ in range(config.failure_threshold - 1):
                breaker.record_failure(ConnectionError("refused"))
            tripped_at = time.time()
            breaker.record_failure(ConnectionError("refused"))
            results.put(("tripped", tripped_at, int(breaker.state)))
            await asyncio.sleep(0.5)  # stay in the fleet while the others notice

    asyncio.run(body())


def watch_for_trip(
    url: str, config: BreakerConfig, ready: Event, results: Queue[object], seconds: float
) -> None:
    """Report the wall time at which this worker's breaker first shows the trip."""

    async def body() -> None:
        async with shared_breaker(url, config) as breaker:
            ready.set()
            if await wait_until_tripped(breaker, time.monotonic() + seconds):
                results.put(("seen", time.time(), int(breaker.state)))

    asyncio.run(body())


def count_probes(
    url: str,
    config: BreakerConfig,
    ready: Event,
    results: Queue[object],
    seconds: float,
    probe_seconds: float,
) -> None:
    """Ask for a probe every 2 ms for ``probe_seconds`` after the trip; report how many passed.

    Outcomes are never recorded, so every permit handed out stays a probe in flight.
    """

    async def body() -> None:
        async with shared_breaker(url, config) as breaker:
            ready.set()
            if not await wait_until_tripped(breaker, time.monotonic() + seconds):
                return
            allowed = 0
            deadline = time.monotonic() + probe_seconds
            while time.monotonic() < deadline:
                allowed += breaker.can_execute()
                await asyncio.sleep(0.002)
            results.put(("probes", allowed))

    asyncio.run(body())


def probe_then_hang(
    url: str, config: BreakerConfig, ready: Event, results: Queue[object], seconds: float
) -> None:
    """Take a probe and never report it, as a worker that dies mid-probe would."""

    async def body() -> None:
        async with shared_breaker(url, config) as breaker:
            ready.set()
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if breaker.can_execute() and breaker.state is CircuitState.HALF_OPEN:
                    results.put(("probing", time.time()))
                    break
                await asyncio.sleep(0.005)
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))  # hold it until killed

    asyncio.run(body())
