"""Cancelling tasks so that they really end, on Python 3.11 too.

On 3.11, ``asyncio.wait_for`` swallows a cancellation that arrives as the awaited
operation completes (fixed in 3.12). redis-py sends commands through it, so a stream
coroutine cancelled mid-command sometimes carries on as if nothing happened. Cancelling
again until the task is done (each time it is most likely waiting somewhere else) ends
it within a few milliseconds instead of a stop timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection

RECANCEL_SECONDS = 0.05


async def cancel_and_wait(
    tasks: Collection[asyncio.Task[object]], timeout: float
) -> set[asyncio.Task[object]]:
    """Cancel ``tasks`` until they are done or ``timeout`` passes; returns the stuck ones."""
    pending = {task for task in tasks if not task.done()}
    deadline = asyncio.get_running_loop().time() + timeout
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_SECONDS, left))
    return pending
