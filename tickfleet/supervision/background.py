"""Failure sinks written from one dedicated thread, never from the event loop.

A failure sink may be a Redis write that takes up to a socket timeout when Redis is
down, which is exactly when failures pile up. Writing on the event loop would stall
every stream coroutine of the process; writing through the loop's default executor would
compete with lease heartbeats for its threads. One thread of its own keeps the writes
ordered and their cost away from everything else; the queue in front of it is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from tickfleet.failures import FailureSink, TaskFailure


class BackgroundSink:
    """A ``FailureSink`` whose ``record`` only enqueues; ``drain`` awaits the writes."""

    def __init__(self, sink: FailureSink, logger: logging.Logger, max_pending: int = 100) -> None:
        self._sink = sink
        self._log = logger
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: set[Future[None]] = set()
        # Threads start on the first submit, so an idle monitor costs no thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tickfleet-failures")

    def record(self, failure: TaskFailure) -> None:
        """Queue the write; a full queue or a closed sink loses the record, never raises."""
        with self._lock:
            if len(self._pending) >= self._max_pending:
                self._log.warning("failure sink busy: %s failure not recorded", failure.task)
                return
            try:
                future = self._executor.submit(self._sink.record, failure)
            except RuntimeError:
                self._log.warning("failure sink closed: %s failure not recorded", failure.task)
                return
            self._pending.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        error = None if future.cancelled() else future.exception()
        if error is not None:
            self._log.warning("failure sink %r raised", self._sink, exc_info=error)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait for the queued writes; True when none is left."""
        with self._lock:
            pending = [asyncio.wrap_future(future) for future in self._pending]
        if not pending:
            return True
        _, left = await asyncio.wait(pending, timeout=timeout)
        return not left

    def close(self) -> None:
        """Refuse new writes; queued ones still run, nobody waits for them."""
        self._executor.shutdown(wait=False)
