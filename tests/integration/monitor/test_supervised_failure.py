"""The issue's acceptance test: a failing stream coroutine is never silent."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
import redis

from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import SystemClock
from tickfleet.supervision import RestartPolicy, Supervisor, SupervisorFailed, TaskMonitor
from tickfleet.supervision.failures import RedisFailureLog, TaskFailure

pytestmark = pytest.mark.timeout(30)

CONTEXT = {"stream": "acct-7", "account": "ZX1234", "worker": "stream@host-a", "pid": "4242"}


class FeedError(Exception):
    pass


def test_failing_coroutine_is_logged_counted_recorded_and_passed_to_on_error(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    metrics = MetricsBuffer()
    log = RedisFailureLog(redis_client, Keys().task_failures)
    monitor = TaskMonitor(CONTEXT, metrics, log, SystemClock(), logging.getLogger("stream"))
    calls: list[tuple[Exception, TaskFailure]] = []

    def on_error(exc: Exception, failure: TaskFailure) -> None:
        calls.append((exc, failure))

    supervisor = Supervisor(monitor, "stream:acct-7", on_error=on_error)
    sibling_cancelled = asyncio.Event()

    async def feed() -> None:
        await asyncio.sleep(0.01)
        raise FeedError("kite socket closed")

    async def heartbeat() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise

    async def main() -> None:
        supervisor.supervise("feed", feed, RestartPolicy("fail"))
        supervisor.supervise("heartbeat", heartbeat, RestartPolicy())
        await supervisor.run()

    with pytest.raises(SupervisorFailed) as info:
        asyncio.run(main())

    # logged once, with context in the text and as record attributes
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    text = record.getMessage()
    assert "feed" in text and "acct-7" in text and "ZX1234" in text and "kite socket closed" in text
    assert record.exc_info is not None and isinstance(record.exc_info[1], FeedError)
    assert record.tf_task == "feed"  # type: ignore[attr-defined]
    assert record.tf_stream == "acct-7"  # type: ignore[attr-defined]
    assert record.tf_account == "ZX1234"  # type: ignore[attr-defined]

    # counted
    label = orjson.dumps(["feed"]).decode()
    assert metrics.pending()[("task_failures_total", label)] == 1

    # recorded in the real Redis failure log
    [recorded] = log.recent()
    assert recorded == info.value.failure
    assert (recorded.task, recorded.message) == ("feed", "kite socket closed")
    assert recorded.exc_type.endswith("FeedError")
    assert recorded.context == CONTEXT
    assert "raise FeedError" in recorded.traceback

    # on_error called once with the exception; the sibling was cancelled
    assert len(calls) == 1
    assert isinstance(calls[0][0], FeedError) and calls[0][1] == recorded
    assert sibling_cancelled.is_set()
