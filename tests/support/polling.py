"""Bounded waiting for conditions that other threads, processes or coroutines make true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], object], timeout: float, every: float = 0.01, what: str = "condition"
) -> float:
    """Poll ``condition`` until truthy; return the seconds it took; fail after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(every)
    raise AssertionError(f"{what} not met within {timeout}s")


async def await_until(
    condition: Callable[[], object], timeout: float, every: float = 0.01, what: str = "condition"
) -> float:
    """``wait_until`` for code on an event loop: sleeps without blocking the loop."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        await asyncio.sleep(every)
    raise AssertionError(f"{what} not met within {timeout}s")
