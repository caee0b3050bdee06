"""The task monitor: no coroutine of a stream may fail silently.

The predecessor's background tasks died without a trace because nobody awaited them.
Every coroutine now runs through ``TaskMonitor``: a failure is logged once at ERROR with
its context (as ``tf_*`` record attributes for JSON formatters, and in the message text
for plain logs), counted in ``task_failures_total{task}``, kept in ``failures``, handed
to the failure sink (whose ``record`` only queues: a stream's ``AsyncFailureLog`` writes
it from a coroutine of its own), handed to ``on_error``, and re-raised so the task's
result still holds it. ``CancelledError`` is how asyncio
stops things, not a failure, and passes through untouched. ``install`` catches what
escapes the monitored tasks (callbacks, unmonitored futures) at the loop.

The success path does no I/O: one wrapper coroutine and one done callback per task.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import socket
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, TypeVar

from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock
from tickfleet.supervision.failures import FailureSink, TaskFailure

T = TypeVar("T")
OnError = Callable[[Exception, TaskFailure], Awaitable[None] | None]

LOOP_TASK = "loop"
FAILURE_METRIC = "task_failures_total"


def process_context(**fields: str) -> dict[str, str]:
    """Failure context naming this process (host, pid) plus the given fields."""
    return {"host": socket.gethostname(), "pid": str(os.getpid()), **fields}


def _describe(failure: TaskFailure) -> str:
    pairs = " ".join(f"{key}={value}" for key, value in failure.context.items())
    return f"{pairs} restarts={failure.restarts}".lstrip()


def _log_extra(failure: TaskFailure) -> dict[str, object]:
    extra: dict[str, object] = {f"tf_{key}": value for key, value in failure.context.items()}
    extra.update(
        tf_task=failure.task,
        tf_exc_type=failure.exc_type,
        tf_restarts=failure.restarts,
        tf_context=dict(failure.context),
    )
    return extra


def _settle(coro: Coroutine[Any, Any, Any], task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        # Cancelled before its first step, the wrapper never awaited ``coro``; closing
        # it avoids a misleading "coroutine was never awaited" warning.
        coro.close()
    else:
        task.exception()  # marks it retrieved: the monitor has already reported it


class TaskMonitor:
    """Runs coroutines so that their failures are reported, never swallowed."""

    def __init__(
        self,
        context: Mapping[str, str],
        metrics: Metrics,
        sink: FailureSink,
        clock: Clock,
        logger: logging.Logger | None = None,
        *,
        recent_size: int = 50,
    ) -> None:
        self.context = dict(context)
        self.clock = clock
        self.logger = logger or logging.getLogger(__name__)
        self._metrics = metrics
        self._sink = sink
        self._recent: deque[TaskFailure] = deque(maxlen=recent_size)

    @property
    def failures(self) -> list[TaskFailure]:
        """The latest failures reported by this process, newest first."""
        return list(self._recent)

    def create_monitored_task(
        self,
        coro: Coroutine[Any, Any, T],
        task_name: str,
        on_error: OnError | None = None,
        *,
        context: Mapping[str, str] | None = None,
        restarts: int = 0,
    ) -> asyncio.Task[T]:
        """Start ``coro`` as a task named ``task_name`` whose failure is reported.

        ``on_error(exc, failure)`` may be a plain function or a coroutine function.
        ``context`` adds to the monitor's context for this task only.
        """
        wrapped = self.run(coro, task_name, on_error, context=context, restarts=restarts)
        task = asyncio.get_running_loop().create_task(wrapped, name=task_name)
        task.add_done_callback(functools.partial(_settle, coro))
        return task

    async def run(
        self,
        awaitable: Awaitable[T],
        task_name: str,
        on_error: OnError | None = None,
        *,
        context: Mapping[str, str] | None = None,
        restarts: int = 0,
    ) -> T:
        """Await ``awaitable`` in the current task, reporting its failure, then re-raising it."""
        try:
            return await awaitable
        except Exception as exc:
            failure = self.report(task_name, exc, context=context, restarts=restarts)
            if on_error is not None:
                await self._call_on_error(on_error, exc, failure)
            raise

    async def _call_on_error(self, on_error: OnError, exc: Exception, failure: TaskFailure) -> None:
        try:
            result = on_error(exc, failure)
            if inspect.isawaitable(result):
                await result
        except Exception as hook_exc:
            self.report(
                f"{failure.task}.on_error",
                hook_exc,
                context=failure.context,
                restarts=failure.restarts,
            )

    def report(
        self,
        task_name: str,
        exc: BaseException,
        *,
        context: Mapping[str, str] | None = None,
        restarts: int = 0,
    ) -> TaskFailure:
        """Log, count and record one failure; for code that catches its own exceptions."""
        merged = {**self.context, **context} if context else self.context
        failure = TaskFailure.from_exception(task_name, exc, merged, self.clock.time(), restarts)
        self._publish(failure, exc)
        return failure

    def _publish(self, failure: TaskFailure, exc: BaseException | None) -> None:
        self.logger.error(
            "task %s failed [%s]: %s: %s",
            failure.task,
            _describe(failure),
            failure.exc_type or "no exception",
            failure.message,
            exc_info=exc,
            extra=_log_extra(failure),
        )
        self._metrics.inc(FAILURE_METRIC, labels={"task": failure.task})
        self._recent.appendleft(failure)
        try:
            self._sink.record(failure)
        except Exception:  # a sink must not raise; if one does, the failure is still logged
            self.logger.warning("failure sink %r raised", self._sink, exc_info=True)

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Report everything that reaches ``loop``'s exception handler as task ``loop``."""
        loop.set_exception_handler(self._on_loop_exception)

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        try:
            exc = context.get("exception")
            self._publish(self._loop_failure(context, exc), exc)
        except Exception:
            loop.default_exception_handler(context)

    def _loop_failure(self, context: dict[str, Any], exc: BaseException | None) -> TaskFailure:
        message = str(context.get("message") or "unhandled error in the event loop")
        details = {**self.context, "loop_message": message}
        source = context.get("handle") or context.get("future") or context.get("task")
        if source is not None:
            details["source"] = repr(source)[:300]
        if exc is not None:
            return TaskFailure.from_exception(LOOP_TASK, exc, details, self.clock.time())
        return TaskFailure(LOOP_TASK, details, "", message, "", self.clock.time())
