"""A live feed's Kite session: stream with the account's current token, wait out a refusal.

``LiveSession.run`` takes the credentials ``tickfleet.accounts.access_tokens`` names
current, runs the feed's connections with them, and every ``check_every`` seconds looks
again: a token posted or configured since replaces the running one (today's token stops
working tomorrow morning), reconnecting every connection with every subscription. When Kite
refuses the session (HTTP 403) the connections stop, the account's session is marked
refused (``/health`` degraded, naming the account) and nothing is attempted again until
a token Kite has not refused appears; the stream, the worker and the lease stay up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from tickfleet.accounts.access_tokens import ConfiguredCredentials, Credentials, SessionStore
from tickfleet.kite.connection import SessionRefusedError
from tickfleet.kite.messages import connect_url
from tickfleet.kite.pool import ConnectionPool
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock
from tickfleet.stream.status import StreamStatus
from tickfleet.supervision.cancel import cancel_and_wait

log = logging.getLogger("tickfleet.stream")

STOP_SECONDS = 5.0

Connections = Callable[[Credentials, Callable[[], None]], Coroutine[Any, Any, None]]
"""Runs a feed's connections with these credentials; calls back when one opens."""


class LiveSession:
    def __init__(
        self,
        store: SessionStore,
        configured: ConfiguredCredentials,
        check_every: float,
        status: StreamStatus,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._configured = configured
        self._every = check_every
        self._status = status
        self._clock = clock
        self._metrics = metrics
        self._opened = asyncio.Event()

    @property
    def account_id(self) -> str:
        return self._store.account_id

    async def run(self, connections: Connections) -> None:
        """Stream until cancelled, through token changes and refusals."""
        try:
            while True:
                credentials = await self._wait_for_credentials()
                await self._stream_with(credentials, connections)
        finally:
            self._status.session = None

    async def _wait_for_credentials(self) -> Credentials:
        waiting = False
        while True:
            found = await self._store.current(self._configured)
            if found is not None:
                self._status.unavailable = None
                return found
            if not waiting:
                waiting = True
                await self._announce_wait()
            await asyncio.sleep(self._every)

    async def _announce_wait(self) -> None:
        known = self._configured() is not None or await self._store.posted() is not None
        self._status.session = "refused" if known else "missing"
        account = self.account_id
        what = "Kite refused the access token" if known else "no access token"
        self._status.unavailable = (
            f"{what} for account {account}; waiting for a new one "
            f"(POST /admin/accounts/{self.account_id}/token, or the accounts file)"
        )
        log.warning("%s", self._status.unavailable)

    async def _stream_with(self, credentials: Credentials, connections: Connections) -> None:
        self._opened.clear()
        self._status.session = "connecting"
        running = asyncio.create_task(connections(credentials, self._opened.set))
        log.info("account %s: streaming with the %s token", self.account_id, credentials.source)
        try:
            while True:
                if await self._ended(running, credentials):
                    return
                if await self._replaced(credentials):
                    return
        finally:
            await cancel_and_wait({running}, STOP_SECONDS)

    async def _ended(self, running: asyncio.Task[None], credentials: Credentials) -> bool:
        """Wait a check period for the connections to end (or, until then, to open);
        True if Kite refused the session."""
        waiting: set[asyncio.Future[Any]] = {running}
        opened = None
        if self._status.session != "valid":
            opened = asyncio.create_task(self._opened.wait())
            waiting.add(opened)
        try:
            done, _ = await asyncio.wait(
                waiting, timeout=self._every, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if opened is not None:
                opened.cancel()
        if self._opened.is_set() and self._status.session != "valid":
            self._status.session = "valid"
            await self._store.accepted(credentials, self._clock.time())
        if running not in done:
            return False
        try:
            running.result()
        except SessionRefusedError as exc:
            await self._refused(credentials, exc)
            return True
        raise RuntimeError("the Kite connections ended by themselves")

    async def _replaced(self, credentials: Credentials) -> bool:
        current = await self._store.current(self._configured)
        if current is None or current.fingerprint == credentials.fingerprint:
            return False
        log.info(
            "account %s: a new access token (%s); reconnecting", self.account_id, current.source
        )
        return True

    async def _refused(self, credentials: Credentials, exc: SessionRefusedError) -> None:
        self._status.session = "refused"
        self._metrics.inc("kite_session_refusals_total", 1, {"account": self.account_id})
        reason = f"{exc} for the {credentials.source} token"
        log.error("account %s: %s; not retrying that token", self.account_id, reason)
        await self._store.refused(credentials, reason, self._clock.time())


def pool_connections(pool: ConnectionPool, ticker_url: str) -> Connections:
    """A feed's connections: ``pool`` on Kite's ticker URL with the given credentials."""

    async def run(credentials: Credentials, on_open: Callable[[], None]) -> None:
        secret = credentials.access_token.get_secret_value()
        await pool.run(connect_url(ticker_url, credentials.api_key, secret), on_open)

    return run
