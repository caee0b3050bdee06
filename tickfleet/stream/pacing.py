"""The shared tick loop of every feed: steady pace, mode checked on every tick."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tickfleet.stream.status import StreamStatus

Mode = Callable[[], str]
Tick = Callable[[], Awaitable[None]]

LIVE_UNAVAILABLE = "the live Kite feed is not available in this release; streaming nothing"


async def tick_forever(interval: float, mode: Mode, status: StreamStatus, tick: Tick) -> None:
    """Call ``tick`` every ``interval`` seconds while the mode is ``mock``.

    Deadlines are kept on a fixed grid, so a slow tick shortens the next sleep instead
    of letting the pace drift.
    """
    deadline = time.monotonic()
    while True:
        current = mode()
        status.mode = current if current != "live" else "idle"
        if current == "live":
            status.last_error = LIVE_UNAVAILABLE
        elif current == "mock":
            await tick()
        deadline = max(deadline + interval, time.monotonic())
        await asyncio.sleep(deadline - time.monotonic())
