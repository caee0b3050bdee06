"""The command line's table of expected failures: what it explains, and what it leaves to a
traceback because it is a bug."""

from __future__ import annotations

import sqlite3

import pydantic
import pytest
import redis.exceptions
from sqlalchemy import exc as sa_exc

from producers import cli
from producers.api_client import ApiError
from producers.cli import live
from producers.console.exit_codes import FAILED, SETUP
from producers.console.failures import explain
from tickfleet.config.settings import Settings
from tickfleet.instruments import InstrumentSourceError


def test_an_unexpected_error_is_not_explained() -> None:
    assert explain(RuntimeError("a bug")) is None
    assert explain(KeyError("missing")) is None


def test_a_model_of_the_code_that_does_not_validate_is_a_bug_a_setting_is_not() -> None:
    class Body(pydantic.BaseModel):
        n: int

    with pytest.raises(pydantic.ValidationError) as body:
        Body(n="x")
    with pytest.raises(pydantic.ValidationError) as setting:
        Settings(database_timeout_seconds=0)
    assert explain(body.value) is None
    failure = explain(setting.value)
    assert failure is not None
    assert failure.code == SETUP
    assert failure.what == "bad setting: database_timeout_seconds: Input should be greater than 0"


def test_a_database_error_is_expected_only_when_the_database_is_unavailable() -> None:
    missing = sqlite3.OperationalError("no such table: instruments")
    missing.sqlite_errorcode = sqlite3.SQLITE_ERROR
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = sqlite3.SQLITE_BUSY
    assert explain(sa_exc.OperationalError("SELECT 1", None, missing)) is None
    failure = explain(sa_exc.OperationalError("SELECT 1", None, locked))
    assert failure is not None
    assert (failure.code, failure.what) == (
        FAILED,
        "the database is unavailable: database is locked",
    )


def test_a_message_is_two_lines_whatever_the_cause_says() -> None:
    paragraph = "first line of the cause\n" + "more " * 200
    failure = explain(InstrumentSourceError(paragraph, "set TICKFLEET_INSTRUMENTS_CSV"))
    assert failure is not None
    lines = failure.lines("refresh-instruments")
    assert (
        lines[0] == "tickfleet refresh-instruments: instruments not loaded: first line of the cause"
    )
    assert lines[1].startswith("  set TICKFLEET_INSTRUMENTS_CSV; then `tickfleet refresh-")
    assert len(lines) == 2
    long = explain(ApiError("x" * 1000, 409))
    assert long is not None
    assert len(long.what) < 350


def test_main_says_an_expected_failure_and_lets_a_bug_raise(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def redis_down(*_args: object) -> int:
        raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:9.")

    def bug(*_args: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr(live, "tail", redis_down)
    assert cli.main(["tail"]) == FAILED
    assert capsys.readouterr().err.splitlines() == [
        "tickfleet tail: Redis did not answer: Error 111 connecting to 127.0.0.1:9.",
        "  start redis-server, or check REDIS_URL",
    ]
    monkeypatch.setattr(live, "tail", bug)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["tail"])
