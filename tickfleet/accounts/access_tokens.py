"""Kite sessions: which access token an account streams with, and whether Kite took it.

Kite access tokens expire every morning, so a token is never configuration that lasts.
A stream takes its account's token from, in order: the token an operator posted
(``POST /admin/accounts/{id}/token``, kept in Redis), then the accounts configuration,
re-read every time (an edited accounts file counts). A token Kite refused (HTTP 403 on
the handshake) is remembered by its fingerprint, a hash that cannot be turned back into
the token, and never tried again: the stream waits for one it has not seen refused, and
picks it up without a restart. The verdict (valid or refused, why, since when) is kept
in Redis for ``/health`` and the metrics.

A token lives only in the accounts configuration, this Redis hash and the stream's
memory: logs, ``/health``, metrics and task arguments name the account, never the token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import redis
import redis.asyncio as aioredis
from pydantic import SecretStr

from tickfleet.keyspace.keys import Keys

REFUSED_MEMORY_SECONDS = 3 * 86_400  # a refused token is long expired after this

SessionVerdict = Literal["valid", "refused"]
Source = Literal["admin", "configuration"]


@dataclass(frozen=True, slots=True)
class Credentials:
    """An api key and access token, and where they came from."""

    api_key: str
    access_token: SecretStr = field(repr=False)
    source: Source

    @property
    def fingerprint(self) -> str:
        """Names these credentials without revealing them (equal tokens, equal prints)."""
        secret = f"{self.api_key}:{self.access_token.get_secret_value()}".encode()
        return hashlib.sha256(secret).hexdigest()[:16]


ConfiguredCredentials = Callable[[], "Credentials | None"]


@dataclass(frozen=True, slots=True)
class SessionState:
    """What ``/health`` shows of one account's session."""

    account_id: str
    verdict: SessionVerdict | None  # None: no stream has tried a token yet
    reason: str | None
    since: float | None
    source: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.verdict or "unknown",
            "reason": self.reason,
            "since": self.since,
            "source": self.source,
        }


class SessionStore:
    """The stream's side: the posted token, the refused ones, and the verdict."""

    def __init__(self, client: aioredis.Redis, keys: Keys, account_id: str) -> None:
        self._client = client
        self._keys = keys
        self.account_id = account_id

    async def current(self, configured: ConfiguredCredentials) -> Credentials | None:
        """The credentials to stream with now: the first not refused, or None."""
        refused = await self._client.smembers(self._keys.session_refused(self.account_id))
        prints = {_text(p) for p in refused}
        for candidate in (await self.posted(), configured()):
            if candidate is not None and candidate.fingerprint not in prints:
                return candidate
        return None

    async def posted(self) -> Credentials | None:
        return _posted(await self._client.hgetall(self._keys.session_token(self.account_id)))

    async def accepted(self, credentials: Credentials, now: float) -> None:
        """Kite took these credentials: the session is valid."""
        await self._verdict("valid", None, credentials, now)

    async def refused(self, credentials: Credentials, reason: str, now: float) -> None:
        """Kite refused these credentials: remember them and mark the session refused."""
        key = self._keys.session_refused(self.account_id)
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, credentials.fingerprint)
            pipe.expire(key, REFUSED_MEMORY_SECONDS)
            await pipe.execute()
        await self._verdict("refused", reason, credentials, now)

    async def _verdict(
        self, verdict: SessionVerdict, reason: str | None, credentials: Credentials, now: float
    ) -> None:
        state = {
            "state": verdict, "reason": reason or "", "since": repr(now),
            "source": credentials.source,
        }  # fmt: skip
        key = self._keys.session(self.account_id)
        await self._client.hset(key, mapping=state)  # type: ignore[arg-type]


class TokenAlreadyRefusedError(ValueError):
    """The posted token is one Kite has already refused for this account."""


def post_token(
    client: redis.Redis, keys: Keys, account_id: str, credentials: Credentials, now: float
) -> None:
    """An operator's fresh token for ``account_id``; its stream picks it up by itself."""
    refused = client.sismember(keys.session_refused(account_id), credentials.fingerprint)
    if refused:
        raise TokenAlreadyRefusedError(
            f"Kite has already refused this access token for account {account_id}"
        )
    client.hset(
        keys.session_token(account_id),
        mapping={
            "api_key": credentials.api_key,
            "access_token": credentials.access_token.get_secret_value(),
            "posted_at": repr(now),
        },
    )


def rest_credentials(
    client: redis.Redis, keys: Keys, account_id: str, configured: Credentials | None
) -> Credentials | None:
    """What Kite's REST side is asked with (the instruments dump, quotes): the same
    choice a stream makes, read synchronously."""
    refused = {_text(p) for p in client.smembers(keys.session_refused(account_id))}
    posted = _posted(client.hgetall(keys.session_token(account_id)))
    for candidate in (posted, configured):
        if candidate is not None and candidate.fingerprint not in refused:
            return candidate
    return None


def read_sessions(
    client: redis.Redis, keys: Keys, account_ids: Iterable[str]
) -> dict[str, SessionState]:
    """Every named account's session state, in one round trip."""
    ids = list(account_ids)
    pipe = client.pipeline(transaction=False)
    for account_id in ids:
        pipe.hgetall(keys.session(account_id))
    return {a: _state(a, raw) for a, raw in zip(ids, pipe.execute(), strict=True)}


def _fields(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _posted(raw: Mapping[bytes | str, bytes | str]) -> Credentials | None:
    fields = _fields(raw)
    if not fields.get("access_token") or not fields.get("api_key"):
        return None
    return Credentials(fields["api_key"], SecretStr(fields["access_token"]), "admin")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _state(account_id: str, raw: Mapping[bytes | str, bytes | str]) -> SessionState:
    fields = _fields(raw)
    verdict = fields.get("state")
    return SessionState(
        account_id,
        verdict if verdict in ("valid", "refused") else None,  # type: ignore[arg-type]
        fields.get("reason") or None,
        float(fields["since"]) if fields.get("since") else None,
        fields.get("source") or None,
    )
