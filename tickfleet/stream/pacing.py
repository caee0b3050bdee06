"""The shared tick loop of every feed: steady pace, mode checked on every tick."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import redis

from tickfleet.stream.status import StreamStatus

log = logging.getLogger("tickfleet.stream")

Mode = Callable[[], str]
Tick = Callable[[], Awaitable[None]]
Check = Callable[[], bool]

LIVE_UNAVAILABLE = "the live Kite feed is not available in this release; streaming nothing"


async def tick_forever(
    interval: float, mode: Mode, status: StreamStatus, tick: Tick, may_tick: Check
) -> None:
    """Call ``tick`` every ``interval`` seconds while the mode is ``mock``.

    Deadlines are kept on a fixed grid, so a slow tick shortens the next sleep instead
    of letting the pace drift. Ticks pause while ``may_tick`` is false (the lease is not
    certainly ours). A tick that cannot reach the fleet's Redis is skipped, not fatal: an
    outage is logged when it starts and when it ends, and the feed keeps its state.
    """
    deadline = time.monotonic()
    outage: str | None = None
    while True:
        current = mode()
        status.mode = current if current != "live" else "idle"
        if current == "live":
            status.last_error = LIVE_UNAVAILABLE
        elif current == "mock" and may_tick():
            outage = await _tick_through_outage(tick, status.stream, outage)
        deadline = max(deadline + interval, time.monotonic())
        await asyncio.sleep(deadline - time.monotonic())


async def _tick_through_outage(tick: Tick, stream: str, outage: str | None) -> str | None:
    """One tick; returns the ongoing outage's error text, or None when Redis answered."""
    try:
        await tick()
    except (redis.RedisError, OSError) as exc:
        if outage is None:
            log.warning("stream %s: fleet Redis unreachable, ticks paused: %r", stream, exc)
        return repr(exc)
    if outage is not None:
        log.info("stream %s: fleet Redis reachable again, ticking", stream)
    return None
