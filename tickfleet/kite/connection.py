"""One Kite ticker WebSocket connection that stays up by itself.

``KiteConnection.run`` connects, subscribes every wanted token in its mode, hands each
frame's ticks to the feed, and applies changes to the wanted tokens on the open socket
(only the difference is sent). Whatever ends a connection (a drop, an error frame and
close, a handshake refused for a reason other than the session, or silence: neither a
tick nor Kite's one-byte heartbeat for ``stale_seconds``), it reconnects with jittered
exponential backoff, capped, and resubscribes every token. The backoff starts afresh
after a connection that delivered data, so one drop a day costs the base delay, while
a server that refuses every attempt is asked ever less often.

A handshake refused with HTTP 403 is different: Kite says the access token is invalid
or expired, and retrying it would only hammer the endpoint. ``run`` raises
``SessionRefusedError`` and the feed waits for a new token.

Access tokens travel in the connect URL. Nothing here logs it unredacted, and the
websockets library logs through an adapter that redacts them too.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_random_exponential
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from tickfleet.kite.messages import (
    ErrorMessage,
    RedactingLogger,
    Unreadable,
    parse_text,
    redact,
    redact_text,
    set_mode,
    subscribe,
    unsubscribe,
)
from tickfleet.kite.packets import Tick, TickMode, parse_frame
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock
from tickfleet.supervision.cancel import cancel_and_wait

log = logging.getLogger("tickfleet.kite")

FORBIDDEN = 403
STOP_SECONDS = 2.0

TickHandler = Callable[[list[Tick]], None]


class SessionRefusedError(Exception):
    """Kite refused the handshake with HTTP 403: the access token is invalid or expired."""


class StaleConnectionError(Exception):
    """Neither a tick nor a heartbeat arrived for the stale window."""


class _ConnectionFailedError(Exception):
    """An attempt that ended before or during its connection; retried with backoff."""


class _LostAfterServingError(Exception):
    """A connection that delivered data ended; the backoff starts afresh."""


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    stale_seconds: float
    connect_timeout: float
    backoff_base: float
    backoff_max: float


@dataclass(slots=True)
class ConnectionStatus:
    """What ``/health`` shows of one connection; the connection keeps it current."""

    connection: int
    connected: bool = False
    since: float | None = None  # connected, or disconnected, since
    wanted: int = 0
    subscribed: int = 0
    last_tick_at: float | None = None
    last_heartbeat_at: float | None = None
    reconnects: int = 0
    frames: int = 0
    malformed: int = 0
    last_error: str | None = None  # why the connection last ended

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class KiteConnection:
    """One socket's worth of tokens (at most 3000), kept subscribed in their modes."""

    def __init__(
        self,
        name: str,
        url: str,
        config: ConnectionConfig,
        on_ticks: TickHandler,
        status: ConnectionStatus,
        clock: Clock,
        metrics: Metrics,
        on_open: Callable[[], None] = lambda: None,
    ) -> None:
        self.name = name
        self.status = status
        self._url = url
        self._config = config
        self._on_ticks = on_ticks
        self._on_open = on_open
        self._clock = clock
        self._metrics = metrics
        self._labels = {"connection": name}
        self._wanted: dict[int, TickMode] = {}
        self._changed = asyncio.Event()
        self._delivered = False  # the current socket has received something
        self._wire_log = RedactingLogger(logging.getLogger("tickfleet.kite.wire"), {})

    def want(self, modes: Mapping[int, TickMode]) -> None:
        """Stream exactly ``modes`` (token → mode) from now on; sent at once when connected."""
        self._wanted = dict(modes)
        self.status.wanted = len(self._wanted)
        self._changed.set()

    async def run(self) -> None:
        """Stay connected until cancelled; ``SessionRefusedError`` ends it."""
        while True:
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(_ConnectionFailedError),
                    wait=wait_random_exponential(
                        multiplier=self._config.backoff_base, max=self._config.backoff_max
                    ),
                    before_sleep=self._before_retry,
                    reraise=True,
                ):
                    with attempt:
                        await self._attempt()
            except _LostAfterServingError as lost:
                self._note_down(str(lost))
                delay = random.uniform(0, self._config.backoff_base)
                log.warning("kite %s lost: %s; reconnecting in %.2fs", self.name, lost, delay)
                await asyncio.sleep(delay)

    async def _attempt(self) -> None:
        socket = await self._open()
        self._delivered = False
        try:
            self._note_up()
            await self._serve(socket)
        except (ConnectionClosed, StaleConnectionError, OSError) as exc:
            lost = _LostAfterServingError if self._delivered else _ConnectionFailedError
            raise lost(_describe(exc)) from exc
        finally:
            self.status.connected, self.status.subscribed = False, 0
            await socket.close()

    async def _open(self) -> ClientConnection:
        try:
            return await connect(
                self._url,
                open_timeout=self._config.connect_timeout,
                ping_interval=None,  # Kite's heartbeats and the stale window tell liveness
                close_timeout=1,
                compression=None,
                max_size=None,
                proxy=None,
                logger=self._wire_log,
            )
        except InvalidStatus as exc:
            code = exc.response.status_code
            if code == FORBIDDEN:
                raise SessionRefusedError(f"Kite refused the access token (HTTP {code})") from None
            raise _ConnectionFailedError(f"handshake answered HTTP {code}") from None
        except InvalidURI:
            raise ValueError(f"not a WebSocket URL: {redact(self._url)}") from None
        except (InvalidHandshake, OSError, TimeoutError) as exc:
            raise _ConnectionFailedError(_describe(exc)) from None

    async def _serve(self, socket: ClientConnection) -> None:
        """Receive until the connection fails, following the wanted tokens meanwhile."""
        follower = asyncio.create_task(self._follow(socket), name=f"kite:{self.name}:follow")
        try:
            await self._receive(socket, follower)
        finally:
            await cancel_and_wait({follower}, STOP_SECONDS)

    async def _receive(self, socket: ClientConnection, follower: asyncio.Task[None]) -> None:
        status, stale = self.status, self._config.stale_seconds
        while True:
            try:
                async with asyncio.timeout(stale):
                    message = await socket.recv()
            except TimeoutError:
                raise StaleConnectionError(f"no tick nor heartbeat for {stale:g}s") from None
            if follower.done():
                follower.result()  # a failed send means a broken socket: raise it here
            self._delivered = True
            if isinstance(message, str):
                self._on_text(message)
            elif len(message) == 1:
                status.last_heartbeat_at = self._clock.time()
            else:
                self._on_frame(message)

    def _on_frame(self, message: bytes) -> None:
        parsed = parse_frame(message)
        status = self.status
        status.frames += 1
        self._metrics.inc("kite_frames_total", 1, self._labels)
        if parsed.malformed:
            status.malformed += parsed.malformed
            self._metrics.inc("kite_malformed_total", parsed.malformed, self._labels)
        if parsed.ticks:
            status.last_tick_at = self._clock.time()
            self._on_ticks(parsed.ticks)

    def _on_text(self, message: str) -> None:
        text = parse_text(message)
        kind = type(text).__name__
        self._metrics.inc("kite_text_messages_total", 1, {"connection": self.name, "kind": kind})
        if isinstance(text, ErrorMessage):
            log.warning("kite %s: error from Kite: %s", self.name, redact_text(text.text))
        elif isinstance(text, Unreadable):
            log.warning("kite %s: unreadable text frame (%s)", self.name, text.reason)
        else:
            log.info("kite %s: %s", self.name, kind)

    async def _follow(self, socket: ClientConnection) -> None:
        """Send the difference between the wanted tokens and what the socket streams."""
        sent: dict[int, TickMode] = {}
        while True:
            self._changed.clear()
            wanted = self._wanted
            for message in _changes(sent, wanted):
                await socket.send(message)
            sent = dict(wanted)
            self.status.subscribed = len(sent)
            await self._changed.wait()

    def _note_up(self) -> None:
        status = self.status
        status.connected, status.since = True, self._clock.time()
        status.subscribed = 0
        log.info("kite %s connected (%d tokens)", self.name, len(self._wanted))
        self._on_open()

    def _note_down(self, reason: str) -> None:
        status = self.status
        status.connected, status.since, status.last_error = False, self._clock.time(), reason
        status.reconnects += 1
        status.subscribed = 0
        self._metrics.inc("kite_reconnects_total", 1, self._labels)

    def _before_retry(self, state: RetryCallState) -> None:
        outcome = state.outcome
        reason = str(outcome.exception()) if outcome is not None else "unknown"
        self._note_down(reason)
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "kite %s: %s; retry %d in %.2fs", self.name, reason, state.attempt_number, delay
        )


def _changes(sent: Mapping[int, TickMode], wanted: Mapping[int, TickMode]) -> list[str]:
    """The messages that turn what a socket streams into what is wanted."""
    removed = [t for t in sent if t not in wanted]
    added = [t for t in wanted if t not in sent]
    moved = [t for t, mode in wanted.items() if sent.get(t, mode) != mode]
    messages = [unsubscribe(removed)] if removed else []
    if added:
        messages.append(subscribe(added))
    by_mode: dict[TickMode, list[int]] = {}
    for token in (*added, *moved):
        by_mode.setdefault(wanted[token], []).append(token)
    messages.extend(set_mode(mode, tokens) for mode, tokens in sorted(by_mode.items()))
    return messages


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        return f"connection closed ({exc})"
    return str(exc) or type(exc).__name__
