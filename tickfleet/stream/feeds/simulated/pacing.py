"""What the simulated feeds share: their pace, clock, randomness and zone, and the tick
loop that keeps the pace through Redis outages."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import redis

from tickfleet.runtime.clock import Clock

log = logging.getLogger("tickfleet.stream")

Tick = Callable[[], Awaitable[None]]
Check = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class Simulation:
    """The settings every simulated feed of a stream shares."""

    interval: float
    clock: Clock
    rng: np.random.Generator
    tz: ZoneInfo

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), self.tz)


async def tick_forever(interval: float, tick: Tick, may_tick: Check, stream: str) -> None:
    """Call ``tick`` every ``interval`` seconds.

    Deadlines are kept on a fixed grid, so a slow tick shortens the next sleep instead
    of letting the pace drift. Ticks pause while ``may_tick`` is false (the lease is not
    certainly ours). A tick that cannot reach the fleet's Redis is skipped, not fatal: an
    outage is logged when it starts and when it ends, and the feed keeps its state.
    """
    deadline = time.monotonic()
    outage = False
    while True:
        if may_tick():
            outage = await _tick_through_outage(tick, stream, outage)
        deadline = max(deadline + interval, time.monotonic())
        await asyncio.sleep(deadline - time.monotonic())


async def _tick_through_outage(tick: Tick, stream: str, outage: bool) -> bool:
    """One tick; returns whether the fleet's Redis is unreachable now."""
    try:
        await tick()
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        if not outage:
            log.warning("stream %s: fleet Redis unreachable, ticks paused: %r", stream, exc)
        return True
    if outage:
        log.info("stream %s: fleet Redis reachable again, ticking", stream)
    return False
