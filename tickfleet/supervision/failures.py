"""Failure records of supervised tasks, and the logs that keep the latest of them.

The predecessor service lost background-task failures: nothing but a log line, often
not even that. Every failure now becomes a ``TaskFailure`` that ``/health`` can show
from any host, so it is kept in a capped Redis list. Recording a failure happens while
something is already going wrong, possibly Redis itself, so ``RedisFailureLog.record``
never raises: an unreachable Redis costs a WARNING and a small in-memory backlog that the
next successful write flushes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import traceback as tb
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol, cast

import orjson
import redis
import redis.asyncio as aioredis

MAX_MESSAGE_CHARS = 1_000
MAX_TRACEBACK_CHARS = 8_000


def _truncate_tail(text: str, limit: int) -> str:
    """Keep the end of ``text``: a traceback's last frames and its exception line matter most."""
    if len(text) <= limit:
        return text
    return f"...[{len(text) - limit} chars cut]\n" + text[-limit:]


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


@dataclass(frozen=True, slots=True)
class TaskFailure:
    """One failure of one supervised coroutine, small enough to keep a hundred in Redis.

    ``restarts`` is how many times the coroutine had been restarted before this failure.
    """

    task: str
    context: Mapping[str, str] = field(hash=False)
    exc_type: str
    message: str
    traceback: str
    at: float
    restarts: int = 0

    def __post_init__(self) -> None:
        # A private copy: the caller's mapping may change after the failure happened.
        object.__setattr__(self, "context", dict(self.context))

    @classmethod
    def from_exception(
        cls,
        task: str,
        exc: BaseException,
        context: Mapping[str, str],
        at: float,
        restarts: int = 0,
    ) -> TaskFailure:
        return cls(
            task=task,
            context=context,
            exc_type=_type_name(exc),
            message=str(exc)[:MAX_MESSAGE_CHARS],
            traceback=_truncate_tail("".join(tb.format_exception(exc)), MAX_TRACEBACK_CHARS),
            at=at,
            restarts=restarts,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "context": dict(self.context),
            "exc_type": self.exc_type,
            "message": self.message,
            "traceback": self.traceback,
            "at": self.at,
            "restarts": self.restarts,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_json(cls, raw: bytes | str) -> TaskFailure:
        """Parse ``to_json`` output; anything else raises ``ValueError``."""
        try:
            data = orjson.loads(raw)
            context = {str(k): str(v) for k, v in data["context"].items()}
            return cls(
                task=str(data["task"]),
                context=context,
                exc_type=str(data["exc_type"]),
                message=str(data["message"]),
                traceback=str(data["traceback"]),
                at=float(data["at"]),
                restarts=int(data.get("restarts", 0)),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a task failure record: {exc}") from exc


class FailureSink(Protocol):
    """Where failures go; ``record`` must neither block nor raise."""

    def record(self, failure: TaskFailure) -> None: ...


class MemoryFailureLog:
    """The latest failures in process memory: for tests and processes without Redis."""

    def __init__(self, max_entries: int = 100) -> None:
        if max_entries <= 0:
            raise ValueError("max_entries must be positive")
        self._lock = threading.Lock()
        self._entries: deque[TaskFailure] = deque(maxlen=max_entries)

    def record(self, failure: TaskFailure) -> None:
        with self._lock:
            self._entries.appendleft(failure)

    def recent(self, limit: int = 20) -> list[TaskFailure]:
        """Newest first."""
        with self._lock:
            return list(islice(self._entries, max(0, limit)))


class RedisFailureLog:
    """A capped Redis list of failures (newest first), shared by the fleet for ``/health``.

    Calls are synchronous and as slow as the client's socket timeouts and retry policy
    allow (redis-py retries a refused connection for seconds by default); callers on an
    event loop hand them to a thread (``TaskMonitor`` does). The backlog keeps what an
    outage prevented from being written, oldest dropped first when it is full.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        max_entries: int = 100,
        backlog_size: int = 50,
        logger: logging.Logger | None = None,
    ) -> None:
        if max_entries <= 0 or backlog_size <= 0:
            raise ValueError("max_entries and backlog_size must be positive")
        self._client = client
        self.key = key
        self._max_entries = max_entries
        self._log = logger or logging.getLogger(__name__)
        self._lock = threading.Lock()
        self._backlog: deque[TaskFailure] = deque(maxlen=backlog_size)
        self._unreachable = False
        self.dropped = 0

    @property
    def backlog(self) -> list[TaskFailure]:
        """Failures waiting for Redis, oldest first."""
        with self._lock:
            return list(self._backlog)

    def record(self, failure: TaskFailure) -> None:
        with self._lock:
            if len(self._backlog) == self._backlog.maxlen:
                self.dropped += 1
            self._backlog.append(failure)
            self._write_backlog()

    def flush(self) -> bool:
        """Write the backlog without a new failure; True when nothing is left waiting."""
        with self._lock:
            return self._write_backlog()

    def _write_backlog(self) -> bool:
        if not self._backlog:
            return True
        try:
            pipe = self._client.pipeline(transaction=True)
            pipe.lpush(self.key, *(failure.to_json() for failure in self._backlog))
            pipe.ltrim(self.key, 0, self._max_entries - 1)
            pipe.execute()
        except Exception as exc:  # never raise: the caller is already handling a failure
            self._log.warning(
                "failure log %s unreachable (%s: %s); %d failure(s) kept in memory, %d dropped",
                self.key,
                type(exc).__name__,
                exc,
                len(self._backlog),
                self.dropped,
            )
            self._unreachable = True
            return False
        if self._unreachable:
            self._log.info(
                "failure log %s reachable again: wrote %d failure(s)", self.key, len(self._backlog)
            )
            self._unreachable = False
        self._backlog.clear()
        return True

    def recent(self, limit: int = 20) -> list[TaskFailure]:
        """Newest first; unreadable entries are skipped. Redis errors propagate."""
        if limit <= 0:
            return []
        raw = cast(list[bytes], self._client.lrange(self.key, 0, limit - 1))
        failures: list[TaskFailure] = []
        for entry in raw:
            try:
                failures.append(TaskFailure.from_json(entry))
            except ValueError as exc:
                self._log.warning("failure log %s: skipping entry: %s", self.key, exc)
        return failures


class AsyncFailureLog:
    """The fleet's failure log written from a stream's event loop.

    Failures pile up exactly when Redis may be down, so ``record`` only queues (bounded,
    oldest dropped) and wakes ``run``, a coroutine that writes each backlog in one
    transaction; a write that fails keeps the backlog for the next attempt. ``flush``
    writes what is left when the stream ends. Same list and format as ``RedisFailureLog``.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        max_entries: int = 100,
        backlog_size: int = 50,
        retry_seconds: float = 1.0,
    ) -> None:
        self._client = client
        self.key = key
        self._max_entries = max_entries
        self._retry = retry_seconds
        self._backlog: deque[TaskFailure] = deque(maxlen=backlog_size)
        self._pending = asyncio.Event()
        self._unreachable = False
        self._log = logging.getLogger(__name__)

    def record(self, failure: TaskFailure) -> None:
        self._backlog.append(failure)
        self._pending.set()

    async def run(self) -> None:
        while True:
            await self._pending.wait()
            self._pending.clear()
            if not await self.flush():
                await asyncio.sleep(self._retry)
                self._pending.set()

    async def flush(self) -> bool:
        """Write the backlog now; True when nothing is left waiting."""
        if not self._backlog:
            return True
        batch = list(self._backlog)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.lpush(self.key, *(failure.to_json() for failure in batch))
                pipe.ltrim(self.key, 0, self._max_entries - 1)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            if not self._unreachable:
                self._log.warning("failure log %s unreachable (%r); kept in memory", self.key, exc)
            self._unreachable = True
            return False
        written = {id(failure) for failure in batch}
        kept = [failure for failure in self._backlog if id(failure) not in written]
        self._backlog = deque(kept, maxlen=self._backlog.maxlen)
        self._unreachable = False
        return True
