"""The few API calls the command line makes, over HTTP like any other client.

``status``, ``subscribe`` and ``unsubscribe`` go through the API rather than the
database: the API admits subscriptions (capacity, expiry, pinned accounts), requests the
reload and applies the read policy, so the command line sees and changes exactly what
every other client does.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import httpx

from tickfleet.config.settings import Settings

TIMEOUT_SECONDS = 15.0  # above the database timeout /health waits for at worst


class ApiError(Exception):
    """The API could not be reached, or refused a request (the reason in the message)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


def default_url(settings: Settings) -> str:
    """Where ``python -m producers.api`` listens with these settings."""
    return f"http://{settings.api_host}:{settings.api_port}"


class ApiClient:
    """An HTTP client of one tickfleet API, sending the API key when one is configured."""

    def __init__(self, base_url: str, api_key: str | None = None) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=TIMEOUT_SECONDS)

    @classmethod
    def from_settings(cls, settings: Settings, base_url: str | None = None) -> ApiClient:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(base_url or default_url(settings), key)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._http.close()

    def health(self) -> dict[str, Any]:
        """The health document; a ``down`` fleet answers 503 with a document too."""
        return dict(self._call("GET", "/health", accept=(200, 503)))

    def instruments(self, **filters: object) -> list[dict[str, Any]]:
        params = {k: str(v) for k, v in filters.items() if v is not None}
        return list(self._call("GET", "/instruments", params=params))

    def subscribe(self, tokens: list[int]) -> dict[str, Any]:
        body = [{"instrument_token": t} for t in tokens]
        return dict(self._call("POST", "/subscriptions", json=body))

    def unsubscribe(self, token: int) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/subscriptions/{token}"))

    def _call(
        self, method: str, path: str, accept: tuple[int, ...] = (200, 201), **kwargs: Any
    ) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(f"{self._http.base_url} unreachable: {exc}") from exc
        if response.status_code not in accept:
            raise ApiError(_reason(response), response.status_code)
        return response.json()


def _reason(response: httpx.Response) -> str:
    """The API's ``detail`` in a line, else the status line."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, list):
        detail = "; ".join(
            str(d.get("detail") or d.get("msg") or d) if isinstance(d, dict) else str(d)
            for d in detail
        )
    return f"HTTP {response.status_code}: {detail or response.reason_phrase}"
