import logging

import pytest

from tickfleet.runtime.readiness import wait_until_ready


def test_waits_through_failures_then_succeeds(caplog: pytest.LogCaptureFixture) -> None:
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")

    with caplog.at_level(logging.WARNING, logger="tickfleet.readiness"):
        wait_until_ready(check, "thing", timeout=10)
    assert len(calls) == 3
    assert caplog.text.count("thing not ready") == 2


def test_gives_up_after_the_timeout_with_the_last_error() -> None:
    def check() -> None:
        raise ConnectionError("still down")

    with pytest.raises(ConnectionError, match="still down"):
        wait_until_ready(check, "thing", timeout=0.5)


def test_unexpected_errors_are_not_retried() -> None:
    calls = []

    def check() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        wait_until_ready(check, "thing", timeout=5, errors=(ConnectionError,))
    assert len(calls) == 1
