"""What the command line says when a command cannot do its work: a line or two, no traceback.

An operator whose ``tickfleet init-db`` meets an unreachable Kite needs to know which part
failed, why, and what to do next; a traceback answers none of that and hides the one line
that does. The failures tickfleet expects (a dependency down or refusing, a database not
set up, a missing file, a bad setting or argument) are listed here, each with its message,
its remedy and its exit status. Anything not listed is a bug and keeps its traceback.

Exit statuses: ``producers.console.exit_codes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import kombu.exceptions
import pydantic
import redis.exceptions
from sqlalchemy import exc as sa_exc

from producers.api_client import ApiError
from producers.console.contracts import SelectionError
from producers.console.exit_codes import FAILED, INTERRUPTED, SETUP
from tickfleet.accounts.config import AccountConfigError
from tickfleet.config.underlyings import UnknownUnderlyingError
from tickfleet.control.rebalance import RefusedReloadError
from tickfleet.control.reload import ReloadBusyError
from tickfleet.instruments import InstrumentError
from tickfleet.storage.sql import DatabaseNotReadyError, is_unavailable

LONGEST: Final = 300  # characters of a cause quoted; a driver's paragraph is cut


@dataclass(frozen=True, slots=True)
class Failure:
    code: int
    what: str  # what failed and why
    remedy: str | None = None  # what to do about it

    def lines(self, command: str) -> list[str]:
        said = [f"tickfleet {command}: {self.what}"]
        return said + ([f"  {self.remedy}"] if self.remedy else [])


def _line(cause: object) -> str:
    """The first line of ``cause``'s text, at most ``LONGEST`` characters."""
    text = str(cause).strip()
    first = text.splitlines()[0] if text else type(cause).__name__
    return first if len(first) <= LONGEST else first[: LONGEST - 1] + "…"


def _instruments(exc: InstrumentError) -> Failure:
    then = "then `tickfleet refresh-instruments` (the schema is in place)"
    remedy = f"{exc.remedy}; {then}" if exc.remedy else then
    return Failure(FAILED, f"instruments not loaded: {_line(exc)}", remedy)


def _api(exc: ApiError) -> Failure:
    if exc.status_code is None:
        start = "start the API (python -m producers.api), or name it with --api URL"
        return Failure(FAILED, _line(exc), f"{start} or API_HOST/API_PORT")
    if exc.status_code in (401, 403):
        return Failure(FAILED, _line(exc), "set TICKFLEET_API_KEY to the API's key")
    if exc.status_code >= 500:
        return Failure(FAILED, _line(exc), "the fleet's Redis or database is unavailable: retry")
    return Failure(FAILED, f"the API refused: {_line(exc)}", "change the request as it says")


def _redis(exc: redis.exceptions.RedisError) -> Failure:
    remedy = "start redis-server, or check REDIS_URL"
    return Failure(FAILED, f"Redis did not answer: {_line(exc)}", remedy)


def _broker(exc: kombu.exceptions.OperationalError) -> Failure:
    remedy = "start redis-server, or check REDIS_URL"
    return Failure(FAILED, f"the task broker did not answer: {_line(exc)}", remedy)


def _database(exc: sa_exc.SQLAlchemyError) -> Failure | None:
    if not is_unavailable(exc):
        return None  # a missing table or a violated key here is a bug
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    remedy = "check DATABASE_URL, that the database server runs and that nothing holds a lock"
    return Failure(FAILED, f"the database is unavailable: {_line(cause)}", remedy)


def _settings(exc: pydantic.ValidationError) -> Failure | None:
    if exc.title != "Settings":
        return None  # a model of the code's own that did not validate: a bug
    wrong = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()
    )
    remedy = "fix the environment variable (README, Configuration)"
    return Failure(SETUP, f"bad setting: {_line(wrong)}", remedy)


def _file(exc: OSError) -> Failure:
    where = f"{exc.filename}: " if exc.filename else ""
    return Failure(SETUP, f"{where}{exc.strerror or _line(exc)}", "check the path and its rights")


def _said(code: int, remedy: str | None = None) -> Callable[[Exception], Failure]:
    """Errors whose message already says everything but, perhaps, the remedy."""
    return lambda exc: Failure(code, _line(exc), remedy)


FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
Kinds: TypeAlias = type[BaseException] | tuple[type[BaseException], ...]
Explainer: TypeAlias = Callable[[Any], Failure | None]

# The first entry whose type matches explains; None from it means: not expected after all.
EXPECTED: Final[tuple[tuple[Kinds, Explainer], ...]] = (
    (DatabaseNotReadyError, _said(SETUP)),
    (InstrumentError, _instruments),
    (ApiError, _api),
    (SelectionError, _said(SETUP, "name tokens, or UNDERLYING EXPIRY STRIKE[-STRIKE] [CE|PE]")),
    (AccountConfigError, _said(SETUP, "fix TICKFLEET_ACCOUNTS_FILE or TICKFLEET_ACCOUNTS")),
    (UnknownUnderlyingError, _said(SETUP, "name one of TICKFLEET_UNDERLYINGS")),
    (ReloadBusyError, _said(FAILED, "wait for it, or request one without --now")),
    (RefusedReloadError, _said(FAILED)),
    ((redis.exceptions.ConnectionError, redis.exceptions.TimeoutError), _redis),
    (kombu.exceptions.OperationalError, _broker),
    ((sa_exc.DBAPIError, sa_exc.TimeoutError), _database),
    (pydantic.ValidationError, _settings),
    (FILE_ERRORS, _file),
    (KeyboardInterrupt, lambda _exc: Failure(INTERRUPTED, "interrupted")),
)


def explain(exc: BaseException) -> Failure | None:
    """What to tell the operator about ``exc``; None when it is not an expected failure."""
    for kinds, explainer in EXPECTED:
        if isinstance(exc, kinds):
            return explainer(exc)
    return None
