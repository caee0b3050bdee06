from __future__ import annotations

import dataclasses

import pytest

from tickfleet.supervision.failures import MAX_TRACEBACK_CHARS, MemoryFailureLog, TaskFailure

pytestmark = pytest.mark.timeout(10)


class FeedError(Exception):
    pass


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def _failure(task: str = "feed", at: float = 1.0) -> TaskFailure:
    return TaskFailure(task, {"stream": "s1"}, "ValueError", "boom", "tb", at, 0)


def test_from_exception_captures_type_message_traceback_and_context() -> None:
    context = {"stream": "acct-1", "account": "A1"}
    failure = TaskFailure.from_exception(
        "feed", _raised(FeedError("socket closed")), context, 5.0, 2
    )

    assert failure.exc_type == f"{__name__}.FeedError"
    assert failure.message == "socket closed"
    assert "FeedError: socket closed" in failure.traceback
    assert "_raised" in failure.traceback
    assert (failure.task, failure.at, failure.restarts) == ("feed", 5.0, 2)
    assert failure.context == context


def test_builtin_exception_type_has_no_module_prefix() -> None:
    failure = TaskFailure.from_exception("feed", _raised(KeyError("x")), {}, 0.0)
    assert failure.exc_type == "KeyError"


def test_context_is_copied_so_later_changes_do_not_leak_in() -> None:
    context = {"stream": "s1"}
    failure = TaskFailure.from_exception("feed", _raised(ValueError()), context, 0.0)
    context["stream"] = "changed"
    assert failure.context == {"stream": "s1"}


def test_huge_traceback_is_truncated_keeping_its_end() -> None:
    failure = TaskFailure.from_exception("feed", _raised(ValueError("x" * 50_000)), {}, 0.0)

    assert len(failure.traceback) < MAX_TRACEBACK_CHARS + 100
    assert failure.traceback.startswith("...[")
    assert failure.traceback.endswith("x\n")
    assert len(failure.message) == 1_000


def test_json_round_trip_is_lossless() -> None:
    failure = TaskFailure.from_exception(
        "flush", _raised(RuntimeError("ünïcode")), {"stream": "s"}, 1.5, 3
    )
    assert TaskFailure.from_json(failure.to_json()) == failure
    assert TaskFailure.from_json(failure.to_json().decode()) == failure


@pytest.mark.parametrize("raw", [b"not json", b"[]", b'{"task": "x"}', b'{"context": 3}'])
def test_from_json_rejects_foreign_data_with_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a task failure record"):
        TaskFailure.from_json(raw)


def test_failure_is_frozen_and_hashable() -> None:
    failure = _failure()
    with pytest.raises(dataclasses.FrozenInstanceError):
        failure.task = "other"  # type: ignore[misc]
    assert hash(failure) == hash(_failure())


def test_memory_log_keeps_newest_first_and_is_bounded() -> None:
    log = MemoryFailureLog(max_entries=3)
    for at in range(5):
        log.record(_failure(at=float(at)))

    assert [f.at for f in log.recent(10)] == [4.0, 3.0, 2.0]
    assert [f.at for f in log.recent(2)] == [4.0, 3.0]
    assert log.recent(0) == []


def test_memory_log_rejects_non_positive_size() -> None:
    with pytest.raises(ValueError):
        MemoryFailureLog(max_entries=0)
