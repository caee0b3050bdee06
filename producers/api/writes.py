"""The API's writes take turns on one worker thread at a time.

A write is a few milliseconds of database and Redis work in synchronous code, so it runs
off the event loop. Run in anyio's default pool of 40 threads, 50 concurrent POSTs made
40 threads fight for the interpreter lock while one of them held SQLite's single write
slot: the holder waited for the lock after every statement, and p99 reached seconds.
With one slot, each write runs straight through while the event loop parses the next
requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")


class Writes:
    """Runs synchronous write work on a worker thread, one call at a time."""

    def __init__(self) -> None:
        self._slot = anyio.CapacityLimiter(1)

    async def run(self, work: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(work, limiter=self._slot)
