"""How the API fails: fast, small and in JSON, with a status that says whose fault it is.

Measured on the first release: a write lock held on the SQLite file made ``POST
/subscriptions`` hang 30 s and answer 500 while ``/health`` said the database was fine;
a ``NaN`` token answered 500 because the 422 that echoed it could not be encoded as JSON;
a 2.7 MB invalid body came back as a 20 MB 422, and four of them stalled the API for
7.5 s. So:

- a database or Redis that is locked, slow or gone answers **503** with ``Retry-After``
  within its timeout (``TICKFLEET_DATABASE_TIMEOUT_SECONDS``,
  ``TICKFLEET_REDIS_SOCKET_TIMEOUT``), never a 500;
- a route that writes asks Redis first (``producers.api.writes.Writes``, ``deps.RedisUp``),
  so an outage refuses the request
  before the database changes, not after (nothing half-done);
- a body over ``TICKFLEET_API_MAX_BODY_BYTES`` answers **413** before it is parsed;
- a **422** lists at most ``MAX_ERRORS`` problems, each quoting at most ``MAX_INPUT_CHARS``
  of the input, with non-finite numbers spelled as text.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import redis
from fastapi import FastAPI, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as BrokerError
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tickfleet.storage.sql import is_unavailable

log = logging.getLogger("tickfleet.api")

MAX_ERRORS = 10
MAX_INPUT_CHARS = 200

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiError(BaseModel):
    """Every error body: ``detail`` (a text, or a list of problems); on a 503, when to retry."""

    detail: Any
    retry_after: int | None = None


_MEANING = {
    status.HTTP_400_BAD_REQUEST: "the body is not UTF-8 JSON",
    status.HTTP_401_UNAUTHORIZED: "missing or wrong X-API-Key",
    status.HTTP_403_FORBIDDEN: "refused: the API is exposed without a key",
    status.HTTP_404_NOT_FOUND: "no such instrument, subscription or account",
    status.HTTP_409_CONFLICT: "expired contract, no room, or a reload already running",
    status.HTTP_413_CONTENT_TOO_LARGE: "the body exceeds TICKFLEET_API_MAX_BODY_BYTES",
    status.HTTP_422_UNPROCESSABLE_CONTENT: "invalid input: a bounded excerpt of it in detail",
    status.HTTP_503_SERVICE_UNAVAILABLE: "the database or Redis is locked, slow or gone; retry",
}


def declared(*codes: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: its error ``codes``, and 403, 422 and 503, which any
    route may answer, so the OpenAPI document lists every answer the API gives."""
    wanted = sorted({*codes, 403, 422, 503})
    return {code: {"description": _MEANING[code], "model": ApiError} for code in wanted}


def _unavailable(what: str, retry_after: float) -> JSONResponse:
    seconds = max(1, math.ceil(retry_after))
    return JSONResponse(
        {"detail": f"{what} unavailable, retry later", "retry_after": seconds},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(seconds)},
    )


def _timeout(request: Request, name: str) -> float:
    value: float = getattr(request.app.state.services.settings, name)
    return value


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_unavailable(exc):
        raise exc  # a bug, not the database's state: the server error it is
    log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
    return _unavailable("database", _timeout(request, "database_timeout_seconds"))


async def _redis_error(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: Redis unavailable: %s", request.method, request.url.path, exc)
    return _unavailable("Redis", _timeout(request, "redis_socket_timeout"))


def excerpt(value: Any) -> Any:
    """``value`` as a 422 may quote it: small JSON values as they are, anything else as at
    most ``MAX_INPUT_CHARS`` characters of its JSON (``NaN``, ``Infinity`` as text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)  # "NaN", "Infinity", "-Infinity"
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else _cut(str(value))
    if isinstance(value, str):
        return _cut(value)
    # Not orjson: it refuses integers past 64 bits, which JSON bodies may carry.
    return _cut(json.dumps(value, default=repr))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_INPUT_CHARS else text[: MAX_INPUT_CHARS - 1] + "…"


class _AsciiJSON(JSONResponse):
    """JSON with every non-ASCII character escaped: a quoted input may hold a lone
    surrogate (``"\\ud800"`` is valid JSON), which UTF-8 cannot encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode()


def _problem(error: dict[str, Any]) -> dict[str, Any]:
    loc = [p if isinstance(p, int) else str(p)[:MAX_INPUT_CHARS] for p in error.get("loc", ())]
    return {
        "type": str(error.get("type", "invalid")),
        "loc": loc,
        "msg": str(error.get("msg", ""))[:MAX_INPUT_CHARS],
        "input": excerpt(error.get("input")),
    }


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    body = {"detail": [_problem(e) for e in errors[:MAX_ERRORS]], "error_count": len(errors)}
    return _AsciiJSON(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's answer to an ``HTTPException``, in ASCII: a detail may quote input."""
    assert isinstance(exc, StarletteHTTPException)
    return _AsciiJSON({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


class BodyLimit:
    """Refuses a request body over ``limit`` bytes with 413: at once when its
    Content-Length says so, and as soon as a body sent without one (chunked) passes it."""

    def __init__(self, app: ASGIApp, limit: Callable[[], int]) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        limit = self._limit()
        given = dict(scope["headers"]).get(b"content-length", b"")
        if given.isdigit() and int(given) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        await self._app(scope, _counted(receive, limit), send)


def _too_large_detail(limit: int) -> str:
    return f"request body over {limit} bytes (TICKFLEET_API_MAX_BODY_BYTES)"


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {"detail": _too_large_detail(limit)}, status_code=status.HTTP_413_CONTENT_TOO_LARGE
    )


def _counted(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            # FastAPI re-raises an HTTPException from reading the body as it is.
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, _too_large_detail(limit))
        return message

    return counted


def install(app: FastAPI, max_body_bytes: Callable[[], int]) -> None:
    """Register the handlers and the body limit on ``app``."""
    app.add_exception_handler(SQLAlchemyError, _database_error)
    for redis_error in (redis.ConnectionError, redis.TimeoutError, BrokerError):
        app.add_exception_handler(redis_error, _redis_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(BodyLimit, limit=max_body_bytes)
