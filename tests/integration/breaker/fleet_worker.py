"""Bodies of the worker processes the fleet tests spawn: each is bounded by a deadline."""

from __future__ import annotations

import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from tickfleet.breaker import BreakerConfig, CircuitState, SharedBreaker
from tickfleet.connections import fail_fast_client

NAME = "publish"


def open_breaker(url: str, config: BreakerConfig) -> SharedBreaker:
    breaker = SharedBreaker(fail_fast_client(url), NAME, config)
    breaker.start()
    return breaker


def wait_until_tripped(breaker: SharedBreaker, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if breaker.state is not CircuitState.CLOSED:
            return True
        time.sleep(0.001)
    return False


def trip_on_signal(
    url: str, config: BreakerConfig, ready: Event, go: Event, results: Queue[object], seconds: float
) -> None:
    """Trip the breaker when told to; report the wall time just before the tripping failure."""
    with open_breaker(url, config) as breaker:
        ready.set()
        if not go.wait(seconds):
            return
        for _ in range(config.failure_threshold - 1):
            breaker.record_failure(ConnectionError("refused"))
        tripped_at = time.time()
        breaker.record_failure(ConnectionError("refused"))
        results.put(("tripped", tripped_at, int(breaker.state)))
        time.sleep(0.5)  # stay in the fleet while the others notice


def watch_for_trip(
    url: str, config: BreakerConfig, ready: Event, results: Queue[object], seconds: float
) -> None:
    """Report the wall time at which this worker's breaker first shows the trip."""
    with open_breaker(url, config) as breaker:
        ready.set()
        if wait_until_tripped(breaker, time.monotonic() + seconds):
            results.put(("seen", time.time(), int(breaker.state)))


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
    with open_breaker(url, config) as breaker:
        ready.set()
        if not wait_until_tripped(breaker, time.monotonic() + seconds):
            return
        allowed = 0
        deadline = time.monotonic() + probe_seconds
        while time.monotonic() < deadline:
            allowed += breaker.can_execute()
            time.sleep(0.002)
        results.put(("probes", allowed))


def probe_then_hang(
    url: str, config: BreakerConfig, ready: Event, results: Queue[object], seconds: float
) -> None:
    """Take a probe and never report it, as a worker that dies mid-probe would."""
    breaker = open_breaker(url, config)
    ready.set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if breaker.can_execute() and breaker.state is CircuitState.HALF_OPEN:
            results.put(("probing", time.time()))
            break
        time.sleep(0.005)
    time.sleep(max(0.0, deadline - time.monotonic()))  # hold the probe until killed
