from __future__ import annotations

import asyncio
import gc
import logging
import warnings
from typing import Any

import pytest

from tests.unit.monitor.helpers import CONTEXT, LOGGER, counted, failure_records, rig
from tickfleet.runtime.clock import ManualClock
from tickfleet.supervision import LOOP_TASK, TaskMonitor, process_context
from tickfleet.supervision.failures import MemoryFailureLog, TaskFailure

pytestmark = pytest.mark.timeout(10)


class FeedError(Exception):
    pass


async def fail(message: str = "socket closed") -> None:
    await asyncio.sleep(0)
    raise FeedError(message)


async def answer() -> int:
    await asyncio.sleep(0)
    return 42


class BrokenSink:
    def record(self, failure: TaskFailure) -> None:
        raise OSError("disk full")


def test_success_returns_the_result_and_reports_nothing(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()

    async def main() -> int:
        return await r.monitor.create_monitored_task(answer(), "feed")

    assert asyncio.run(main()) == 42
    assert r.monitor.failures == []
    assert r.metrics.pending() == {}
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING]


def test_failure_is_logged_once_with_context(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()

    async def main() -> None:
        task = r.monitor.create_monitored_task(fail(), "feed")
        await asyncio.wait([task])

    asyncio.run(main())
    [record] = failure_records(caplog.records, "feed")
    text = record.getMessage()
    assert record.name == LOGGER
    assert all(part in text for part in ("feed", "acct-7", "ZX1234", "FeedError", "socket closed"))
    assert record.exc_info is not None and isinstance(record.exc_info[1], FeedError)
    assert (record.tf_stream, record.tf_account, record.tf_worker) == (  # type: ignore[attr-defined]
        "acct-7",
        "ZX1234",
        "stream@host-a",
    )
    assert record.tf_restarts == 0  # type: ignore[attr-defined]
    assert record.tf_context == CONTEXT  # type: ignore[attr-defined]


def test_failure_is_counted_kept_and_written_to_the_sink() -> None:
    r = rig()

    async def main() -> None:
        task = r.monitor.create_monitored_task(fail(), "feed")
        await asyncio.wait([task])

    asyncio.run(main())
    assert counted(r.metrics, "feed") == 1
    [kept] = r.monitor.failures
    assert (kept.task, kept.exc_type, kept.message) == (
        "feed",
        f"{__name__}.FeedError",
        "socket closed",
    )
    assert kept.context == CONTEXT
    assert kept.at == r.clock.time()
    assert r.sink.recent() == [kept]


def test_the_task_result_holds_the_original_exception() -> None:
    r = rig()
    raised: list[BaseException] = []

    async def main() -> None:
        task = r.monitor.create_monitored_task(fail("original"), "feed")
        with pytest.raises(FeedError, match="original") as info:
            await task
        raised.append(info.value)
        assert task.exception() is info.value

    asyncio.run(main())
    assert len(raised) == 1


def test_unawaited_failed_task_does_not_log_never_retrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = rig()

    async def main() -> None:
        task = r.monitor.create_monitored_task(fail(), "feed")
        await asyncio.wait([task])
        del task
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(main())
    assert not [rec for rec in caplog.records if "never retrieved" in rec.getMessage()]
    assert len(failure_records(caplog.records, "feed")) == 1


def test_per_task_context_adds_to_the_monitor_context(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()

    async def main() -> None:
        task = r.monitor.create_monitored_task(fail(), "feed", context={"connection": "2"})
        await asyncio.wait([task])

    asyncio.run(main())
    assert r.monitor.failures[0].context == {**CONTEXT, "connection": "2"}
    assert failure_records(caplog.records, "feed")[0].tf_connection == "2"  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_on_error_is_called_once_with_exception_and_failure(kind: str) -> None:
    r = rig()
    calls: list[tuple[Exception, TaskFailure]] = []

    def sync_hook(exc: Exception, failure: TaskFailure) -> None:
        calls.append((exc, failure))

    async def async_hook(exc: Exception, failure: TaskFailure) -> None:
        await asyncio.sleep(0)
        calls.append((exc, failure))

    async def main() -> BaseException | None:
        hook = sync_hook if kind == "sync" else async_hook
        task = r.monitor.create_monitored_task(fail(), "feed", on_error=hook)
        await asyncio.wait([task])
        return task.exception()

    exc = asyncio.run(main())
    assert len(calls) == 1
    assert calls[0][0] is exc
    assert calls[0][1] == r.monitor.failures[0]


def test_on_error_that_raises_is_logged_and_counted_too(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()

    def hook(exc: Exception, failure: TaskFailure) -> None:
        raise RuntimeError("alerting is down")

    async def main() -> BaseException | None:
        task = r.monitor.create_monitored_task(fail(), "feed", on_error=hook)
        await asyncio.wait([task])
        return task.exception()

    assert isinstance(asyncio.run(main()), FeedError)
    [record] = failure_records(caplog.records, "feed.on_error")
    assert "alerting is down" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    assert counted(r.metrics, "feed.on_error") == 1
    assert counted(r.metrics, "feed") == 1
    assert [f.task for f in r.monitor.failures] == ["feed.on_error", "feed"]


def test_cancelled_error_propagates_and_is_not_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()
    seen: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        task = r.monitor.create_monitored_task(forever(), "feed", on_error=lambda e, f: None)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(main())
    assert seen == ["cancelled"]
    assert r.metrics.pending() == {}
    assert r.monitor.failures == []
    assert not [rec for rec in caplog.records if rec.levelno >= logging.WARNING]


def test_task_cancelled_before_it_started_leaves_no_unawaited_coroutine() -> None:
    r = rig()

    async def main() -> None:
        task = r.monitor.create_monitored_task(answer(), "feed")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert r.metrics.pending() == {}


def test_base_exceptions_other_than_cancellation_are_not_swallowed() -> None:
    r = rig()

    async def exits() -> None:
        raise SystemExit(3)

    async def main() -> None:
        await r.monitor.run(exits(), "feed")

    with pytest.raises(SystemExit):
        asyncio.run(main())
    assert r.monitor.failures == []


def test_report_is_available_to_code_that_catches_its_own_errors() -> None:
    r = rig()
    failure = r.monitor.report(
        "reconnect", FeedError("401"), context={"connection": "1"}, restarts=4
    )

    assert failure.restarts == 4
    assert failure.context == {**CONTEXT, "connection": "1"}
    assert counted(r.metrics, "reconnect") == 1


def test_failures_list_is_bounded_newest_first() -> None:
    r = rig(recent_size=3)
    for n in range(5):
        r.monitor.report(f"t{n}", FeedError())
    assert [f.task for f in r.monitor.failures] == ["t4", "t3", "t2"]


def test_a_sink_that_raises_is_logged_not_propagated(caplog: pytest.LogCaptureFixture) -> None:
    r = rig(BrokenSink())

    async def main() -> None:
        task = r.monitor.create_monitored_task(fail(), "feed")
        await asyncio.wait([task])

    asyncio.run(main())
    [warning] = [rec for rec in caplog.records if rec.levelno == logging.WARNING]
    assert "failure sink" in warning.getMessage()
    assert warning.exc_info is not None and isinstance(warning.exc_info[1], OSError)


def test_loop_handler_reports_a_failing_callback(caplog: pytest.LogCaptureFixture) -> None:
    r = rig()

    def callback() -> None:
        raise FeedError("in callback")

    async def main() -> None:
        r.monitor.install(asyncio.get_running_loop())
        asyncio.get_running_loop().call_soon(callback)
        await asyncio.sleep(0.01)

    asyncio.run(main())
    [record] = failure_records(caplog.records, LOOP_TASK)
    assert record.exc_info is not None and isinstance(record.exc_info[1], FeedError)
    assert "in callback" in record.getMessage() and "acct-7" in record.getMessage()
    assert counted(r.metrics, LOOP_TASK) == 1
    [failure] = r.sink.recent()
    assert failure.exc_type.endswith("FeedError")
    assert "callback" in failure.context["source"]


def test_loop_handler_reports_an_unmonitored_task_nobody_awaited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r = rig()

    async def main() -> None:
        r.monitor.install(asyncio.get_running_loop())
        task = asyncio.get_running_loop().create_task(fail("unmonitored"))
        await asyncio.wait([task])
        del task
        gc.collect()
        await asyncio.sleep(0)

    asyncio.run(main())
    [failure] = r.monitor.failures
    assert failure.task == LOOP_TASK
    assert failure.message == "unmonitored"
    assert "never retrieved" in failure.context["loop_message"]


def test_loop_handler_reports_events_without_an_exception() -> None:
    r = rig()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        r.monitor.install(loop)
        loop.call_exception_handler({"message": "something odd"})

    asyncio.run(main())
    [failure] = r.monitor.failures
    assert (failure.task, failure.exc_type, failure.message) == (LOOP_TASK, "", "something odd")
    assert counted(r.metrics, LOOP_TASK) == 1


def test_loop_handler_falls_back_to_asyncio_default_if_reporting_breaks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenMetrics:
        def inc(self, name: str, amount: float = 1.0, labels: Any = None) -> None:
            raise RuntimeError("metrics broken")

        def observe(self, name: str, value: float, labels: Any = None) -> None: ...

        def observe_many(self, name: str, values: Any, labels: Any = None) -> None: ...

        def set_gauge(self, name: str, value: float, labels: Any = None) -> None: ...

    monitor = TaskMonitor(CONTEXT, BrokenMetrics(), MemoryFailureLog(), ManualClock())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        monitor.install(loop)
        loop.call_exception_handler({"message": "fallback please"})

    asyncio.run(main())
    assert any(
        rec.name == "asyncio" and "fallback please" in rec.getMessage() for rec in caplog.records
    )


def test_process_context_names_host_and_pid() -> None:
    context = process_context(stream="s1")
    assert context["stream"] == "s1"
    assert context["pid"].isdigit()
    assert context["host"]
