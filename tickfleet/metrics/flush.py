"""Flushing a process's buffer on a timer: a thread for the API and workers, a coroutine
for a stream's event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import redis
import redis.asyncio as aioredis

from tickfleet.metrics.buffer import GAUGE_TTL_FLUSHES, MetricsBuffer, metrics_prefix

_log = logging.getLogger("tickfleet.metrics")


class MetricsFlusher:
    """Flushes a process's buffer to Redis every few seconds from a daemon thread.

    Flushing on a timer keeps metric writes off every hot path; ``stop`` flushes once
    more so a process that exits cleanly loses nothing.
    """

    def __init__(
        self,
        buffer: MetricsBuffer,
        client: redis.Redis,
        key_prefix: str,
        every_seconds: float = 1.0,
    ) -> None:
        self._buffer = buffer
        self._client = client
        self._prefix = metrics_prefix(key_prefix)
        self._every = every_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
            self._thread.start()

    def flush(self) -> bool:
        try:
            self._buffer.flush(self._client, self._prefix, GAUGE_TTL_FLUSHES * self._every)
            return True
        except redis.RedisError as exc:
            _log.warning("metrics flush failed, kept for the next one: %s", exc)
            return False

    def stop(self) -> None:
        """Flush what is left and retire this process's gauges."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._every + 5)
            self._thread = None
        if self.flush():
            try:
                self._buffer.retire(self._client, self._prefix)
            except redis.RedisError as exc:
                _log.warning("metrics gauges not retired, they expire instead: %s", exc)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.flush()


class AsyncMetricsFlusher:
    """A stream's metrics, flushed every second from a coroutine on its loop.

    A stream records into a buffer of its own, so it needs no thread and no sync client;
    ``flush`` at the end writes what the last period recorded.
    """

    def __init__(
        self,
        buffer: MetricsBuffer,
        client: aioredis.Redis,
        key_prefix: str,
        every_seconds: float = 1.0,
    ) -> None:
        self._buffer = buffer
        self._client = client
        self._prefix = metrics_prefix(key_prefix)
        self._every = every_seconds

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            await self.flush()

    async def flush(self) -> bool:
        try:
            await self._buffer.flush_async(
                self._client, self._prefix, GAUGE_TTL_FLUSHES * self._every
            )
        except (redis.RedisError, OSError) as exc:
            _log.warning("metrics flush failed, kept for the next one: %s", exc)
            return False
        return True

    async def close(self) -> None:
        """The last flush, then this stream's gauges retired (they would expire anyway)."""
        if await self.flush():
            try:
                await self._buffer.retire_async(self._client, self._prefix)
            except (redis.RedisError, OSError) as exc:
                _log.warning("metrics gauges not retired, they expire instead: %s", exc)
