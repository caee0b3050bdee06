"""A local Kite-compatible ticker WebSocket server, for tests and for ``tickfleet kite-sim``.

It speaks Kite Connect v3's ticker protocol on 127.0.0.1 (a free port unless told),
from its own event loop in a background thread. The handshake's ``api_key`` picks an
account and its ``access_token`` must be that account's current one (HTTP 403
otherwise), so one server stands in for several accounts, each renewing its token on
its own. JSON subscribe, unsubscribe and mode messages are applied as Kite does
(subscribing puts a token in quote mode, ``mode`` only applies to subscribed tokens) and
recorded per connection; every ``interval`` each connection receives one binary frame
with a packet per subscribed token in its mode, built by ``tickfleet.kite.encode``, at
the price set for the token or on a random walk from its starting price (``instruments``)
or from a random one; a connection with nothing to stream gets a 1-byte heartbeat every
``heartbeat_interval``.

Commands are thread-safe: each runs on the server's loop and returns once done.

    with KiteServer({"key_a": "token_a", "key_b": "token_b"}) as kite:
        url = kite.connect_url(api_key="key_b")
        kite.set_price(408065, 1573.5)
        kite.set_access_token("renewed_a", api_key="key_a")
        kite.drop_connections()
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import MappingProxyType, TracebackType
from typing import Final, Literal, Self, TypeVar, get_args
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tickfleet.kite.encode import HEARTBEAT, encode_frame, encode_packet
from tickfleet.kite.messages import RedactingLogger, connect_url
from tickfleet.kite.packets import Tick, TickMode, price_divisor
from tickfleet.kite.tokens import SEGMENT_IDS

DEFAULT_CREDENTIALS: Final[Mapping[str, str]] = MappingProxyType(
    {"test_api_key": "test_access_token"}
)

MALFORMED: Final = b"\x00\x03\x00\x2c" + bytes(20)
"""Three packets announced, the first one 44 bytes long, 20 bytes present."""

TextKind = Literal["order", "error", "message"]

_MODES: Final = frozenset(get_args(TickMode))
_MAX_TOKEN: Final = 2**32 - 1
_MAX_WIRE_PRICE: Final = 2**32 - 1  # prices travel as unsigned 32-bit integers
_TICK_SIZE: Final = 0.05
_COMMAND_TIMEOUT: Final = 10.0
_T = TypeVar("_T")


class AccessTokens:
    """Which access token each api key holds now, and which api keys are refused.

    Both local servers (this one and ``local_rest``'s) check a request's pair here, so
    a test renews or revokes an account's token the same way on either. Not thread-safe:
    each server reaches it from one thread or under its lock.
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        if not tokens:
            raise ValueError("credentials need at least one api_key → access_token pair")
        self._tokens = dict(tokens)
        self._refused: set[str] = set()

    @property
    def first_api_key(self) -> str:
        """The account a caller means when it names none."""
        return next(iter(self._tokens))

    def access_token(self, api_key: str) -> str:
        """The token ``api_key`` holds now; KeyError for an unknown key."""
        return self._tokens[api_key]

    def accepts(self, api_key: str | None, access_token: str | None) -> bool:
        if api_key is None or api_key in self._refused:
            return False
        return access_token is not None and self._tokens.get(api_key) == access_token

    def set_access_token(self, access_token: str, api_key: str | None = None) -> None:
        """Give ``api_key`` (a new key is added; None: every key) a new token."""
        for key in self._tokens if api_key is None else [api_key]:
            self._tokens[key] = access_token

    def refuse(self, refusing: bool = True, api_key: str | None = None) -> None:
        """Refuse ``api_key`` (None: every key known now) whatever its token, or stop."""
        keys = set(self._tokens) if api_key is None else {api_key}
        if refusing:
            self._refused |= keys
        else:
            self._refused -= keys


@dataclass(frozen=True, slots=True)
class ClientState:
    """One connection as the server saw it: its account, its subscriptions, what it sent.

    ``received`` holds each text message's JSON value (or its text when it is not JSON),
    and binary messages as bytes.
    """

    id: int
    api_key: str
    open: bool
    subscribed: Mapping[int, TickMode]
    received: tuple[object, ...]


@dataclass
class _Client:
    id: int
    api_key: str
    connection: ServerConnection
    modes: dict[int, TickMode] = field(default_factory=dict)
    received: list[object] = field(default_factory=list)
    open: bool = True
    stalled: bool = False

    def state(self) -> ClientState:
        return ClientState(self.id, self.api_key, self.open, dict(self.modes), tuple(self.received))


@dataclass
class _Instrument:
    """A token's day so far, moved by the test (``fixed``) or by a random walk."""

    price: float
    fixed: bool
    close: float = 0.0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    volume: int = 0

    def __post_init__(self) -> None:
        self.close = self.open = self.high = self.low = self.price

    def move(self, price: float, traded: int) -> None:
        self.price = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += traded


class KiteServer:
    """Kite's ticker endpoint on loopback; start() returns once it listens, stop() joins.

    ``credentials`` maps each api key to the access token it holds (the first key is
    the default account of ``connect_url``); ``instruments`` maps tokens to the price
    their random walk starts from.
    """

    def __init__(
        self,
        credentials: Mapping[str, str] = DEFAULT_CREDENTIALS,
        *,
        instruments: Mapping[int, float] | None = None,
        port: int = 0,
        interval: float = 0.05,
        heartbeat_interval: float = 1.0,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = AccessTokens(credentials)
        self.api_key = self._credentials.first_api_key
        self._interval = interval
        self._heartbeat_interval = heartbeat_interval
        self._random = random.Random(seed)
        self._clock = clock
        self._refused = 0
        self._clients: dict[int, _Client] = {}
        self._ids = itertools.count(1)
        self._market = {
            token: _Instrument(_wire_price(token, price), fixed=False)
            for token, price in (instruments or {}).items()
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: Server | None = None
        self._walker: asyncio.Task[None] | None = None
        self.port = port

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("the Kite server is already running")
        self._loop = asyncio.new_event_loop()
        # A daemon, so that a test that forgets stop() cannot hang the interpreter at exit.
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kite-server", daemon=True
        )
        self._thread.start()
        try:
            self._call(self._open)
        except BaseException:
            self._halt()
            raise
        return self

    def stop(self) -> None:
        """Close every connection and the listener, then the loop and its thread."""
        if self._thread is None:
            return
        try:
            self._call(self._close)
        finally:
            self._halt()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def connect_url(self, access_token: str | None = None, *, api_key: str | None = None) -> str:
        """The URL a client of ``api_key`` (default: the first) connects to.

        With that account's current token, or with ``access_token`` instead.
        """
        key = self.api_key if api_key is None else api_key
        token = self._call_soon(lambda: self._credentials.access_token(key))
        return connect_url(self.url, key, token if access_token is None else access_token)

    # --- commands --------------------------------------------------------------------------

    def set_price(self, token: int, price: float) -> None:
        """Stream ``token`` at ``price`` (rounded to 0.05) from now on, no longer walking.

        ValueError when the price does not fit the wire for the token's segment.
        """
        rounded = _wire_price(token, price)

        def fix() -> None:
            instrument = self._market.get(token)
            if instrument is None:
                self._market[token] = _Instrument(rounded, fixed=True)
            else:
                instrument.fixed = True
                instrument.move(rounded, traded=0)

        self._call_soon(fix)

    def drop_connections(self) -> int:
        """Cut every connection's TCP stream without a close frame, as a network drop does."""

        async def drop() -> int:
            dropped = [c for c in self._clients.values() if c.open]
            for client in dropped:
                client.connection.transport.abort()
            await _until(lambda: not any(c.open for c in dropped))
            return len(dropped)

        return self._call(drop)

    def stall(self) -> int:
        """Silence the open connections: no frames, no heartbeats, pings left unread.

        The TCP connections stay open. Connections made afterwards are served as usual,
        so a client that gives up on a silent connection and reconnects gets ticks again.
        """

        async def stall() -> int:
            stalled = [c for c in self._clients.values() if c.open and not c.stalled]
            for client in stalled:
                client.stalled = True
                client.connection.transport.pause_reading()
            return len(stalled)

        return self._call(stall)

    def resume(self) -> None:
        """Serve stalled connections again."""

        async def resume() -> None:
            for client in self._clients.values():
                if client.open and client.stalled:
                    client.stalled = False
                    client.connection.transport.resume_reading()

        self._call(resume)

    def refuse(self, refusing: bool = True, *, api_key: str | None = None) -> None:
        """Refuse ``api_key``'s handshakes (None: every account's) with 403, or stop.

        Kite answers an expired token so; open connections are not touched.
        """
        self._call_soon(lambda: self._credentials.refuse(refusing, api_key))

    def set_access_token(self, access_token: str, *, api_key: str | None = None) -> None:
        """Accept only ``access_token`` for ``api_key`` (None: every account) from now on.

        A new api key becomes a new account. Open connections are not touched.
        """
        self._call_soon(lambda: self._credentials.set_access_token(access_token, api_key))

    def send_malformed(self, data: bytes = MALFORMED) -> int:
        """Send ``data`` as a binary message to every open, unstalled connection."""
        return self._send_all(data)

    def send_text(self, kind: TextKind, data: object) -> int:
        """Send ``{"type": kind, "data": data}`` as a text message to every connection."""
        return self._send_all(orjson.dumps({"type": kind, "data": data}).decode())

    # --- observations ------------------------------------------------------------------------

    @property
    def live_connections(self) -> int:
        return self._call_soon(lambda: sum(c.open for c in self._clients.values()))

    @property
    def refused_handshakes(self) -> int:
        return self._call_soon(lambda: self._refused)

    def clients(self) -> list[ClientState]:
        """Every connection since start, open or not, in the order they connected."""
        return self._call_soon(lambda: [c.state() for c in self._clients.values()])

    def subscriptions(self) -> list[Mapping[int, TickMode]]:
        """The subscribed tokens and their modes of each open connection."""
        return [c.subscribed for c in self.clients() if c.open]

    # --- the loop's side ---------------------------------------------------------------------

    async def _open(self) -> None:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            self.port,
            process_request=self._check_credentials,
            ping_interval=None,  # the client pings; a stalled server must send nothing
            close_timeout=1,
            compression=None,
            logger=RedactingLogger(logging.getLogger(__name__), {}),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._walker = asyncio.create_task(self._walk())

    async def _close(self) -> None:
        if self._walker is not None:
            self._walker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._walker
        for client in self._clients.values():
            if client.open:
                client.connection.transport.abort()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _halt(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_COMMAND_TIMEOUT)
        loop.close()
        self._loop = self._thread = None

    def _check_credentials(self, connection: ServerConnection, request: Request) -> Response | None:
        if self._credentials.accepts(*_handshake_credentials(request)):
            return None
        self._refused += 1
        return connection.respond(HTTPStatus.FORBIDDEN, "Invalid api_key or access_token.\n")

    async def _serve(self, connection: ServerConnection) -> None:
        api_key = ""
        if connection.request is not None:
            api_key = _handshake_credentials(connection.request)[0] or ""
        client = _Client(next(self._ids), api_key, connection)
        self._clients[client.id] = client
        streaming = asyncio.create_task(self._stream(client))
        try:
            async for message in connection:
                self._receive(client, message)
        except ConnectionClosed:
            pass
        finally:
            client.open = False
            streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming

    def _receive(self, client: _Client, message: str | bytes) -> None:
        if isinstance(message, bytes):
            client.received.append(message)
            return
        try:
            document = orjson.loads(message)
        except orjson.JSONDecodeError:
            client.received.append(message)
            return
        client.received.append(document)
        if isinstance(document, dict):
            _apply(client.modes, document.get("a"), document.get("v"))

    async def _stream(self, client: _Client) -> None:
        """One frame every interval while there is something to stream, else heartbeats."""
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        try:
            while True:
                await asyncio.sleep(self._interval)
                if client.stalled:
                    continue
                message = self._frame(client.modes)
                if message is None and loop.time() - last_sent >= self._heartbeat_interval:
                    message = HEARTBEAT
                if message is not None:
                    await client.connection.send(message)
                    last_sent = loop.time()
        except ConnectionClosed:
            pass

    def _frame(self, modes: Mapping[int, TickMode]) -> bytes | None:
        if not modes:
            return None
        now = int(self._clock())
        return encode_frame(
            _tick(token, mode, self._instrument(token), now) for token, mode in modes.items()
        )

    def _instrument(self, token: int) -> _Instrument:
        instrument = self._market.get(token)
        if instrument is None:
            start = _tick_rounded(self._random.uniform(50.0, 250.0))
            instrument = self._market[token] = _Instrument(start, fixed=False)
        return instrument

    async def _walk(self) -> None:
        """Move every walking price by about 0.1% an interval, each on its own."""
        while True:
            await asyncio.sleep(self._interval)
            for token, instrument in self._market.items():
                if not instrument.fixed:
                    step = math.exp(self._random.gauss(0.0, 0.001))
                    price = min(_walk_ceiling(token), _tick_rounded(instrument.price * step))
                    price = max(_TICK_SIZE, price)
                    instrument.move(price, traded=self._random.randrange(0, 500))

    def _send_all(self, message: str | bytes) -> int:
        async def send() -> int:
            targets = [c for c in self._clients.values() if c.open and not c.stalled]
            for client in targets:
                with contextlib.suppress(ConnectionClosed):
                    await client.connection.send(message)
            return len(targets)

        return self._call(send)

    def _call(self, command: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``command`` on the server's loop and wait for its result."""
        if self._loop is None:
            raise RuntimeError("the Kite server is not running")

        async def run() -> _T:
            return await command()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(_COMMAND_TIMEOUT)

    def _call_soon(self, command: Callable[[], _T]) -> _T:
        """Run a plain function on the server's loop, so that it sees consistent state."""

        async def run() -> _T:
            return command()

        return self._call(run)


def _handshake_credentials(request: Request) -> tuple[str | None, str | None]:
    """The handshake's ``api_key`` and ``access_token`` query parameters (None if not one)."""
    query = parse_qs(urlsplit(request.path).query)
    api_key, access_token = query.get("api_key", []), query.get("access_token", [])
    return (
        api_key[0] if len(api_key) == 1 else None,
        access_token[0] if len(access_token) == 1 else None,
    )


def _apply(modes: dict[int, TickMode], action: object, value: object) -> None:
    """A subscribe, unsubscribe or mode message applied as Kite applies it; others ignored."""
    if action == "subscribe" and isinstance(value, list):
        modes.update((token, "quote") for token in _tokens(value))
    elif action == "unsubscribe" and isinstance(value, list):
        for token in _tokens(value):
            modes.pop(token, None)
    elif action == "mode" and isinstance(value, list) and len(value) == 2:
        mode, tokens = value
        if mode in _MODES and isinstance(tokens, list):
            modes.update((token, mode) for token in _tokens(tokens) if token in modes)


def _tokens(values: list[object]) -> list[int]:
    return [v for v in values if type(v) is int and 0 <= v <= _MAX_TOKEN]


def _tick(token: int, mode: TickMode, day: _Instrument, now: int) -> Tick:
    """The tick Kite would send for ``token`` in ``mode`` on this ``day``."""
    if mode == "ltp":
        return Tick(token, mode, day.price)
    ohlc = Tick(token, mode, day.price, open=day.open, high=day.high, low=day.low, close=day.close)
    if token & 0xFF == SEGMENT_IDS["INDICES"]:
        stamp = now if mode == "full" else None
        return ohlc._replace(change=day.price - day.close, exchange_timestamp=stamp)
    quote = ohlc._replace(
        last_traded_quantity=75,
        average_traded_price=day.price,
        volume_traded=day.volume,
        total_buy_quantity=day.volume // 2 + 750,
        total_sell_quantity=day.volume // 2 + 825,
    )
    if mode == "quote":
        return quote
    levels = [(75 * (i + 1), _TICK_SIZE * i, i + 1) for i in range(1, 6)]
    buy = tuple((q, max(0.0, _tick_rounded(day.price - d)), n) for q, d, n in levels)
    sell = tuple((q, _tick_rounded(day.price + d), n) for q, d, n in levels)
    return quote._replace(
        last_trade_time=now, oi=day.volume * 3, oi_day_high=day.volume * 3,
        oi_day_low=0, exchange_timestamp=now, depth=(buy, sell),
    )  # fmt: skip


def _wire_price(token: int, price: float) -> float:
    """``price`` rounded to 0.05; ValueError when it does not fit the token's segment."""
    rounded = _tick_rounded(price)
    encode_packet(Tick(token, "ltp", rounded))
    return rounded


def _walk_ceiling(token: int) -> float:
    """Nine tenths of the most the wire carries for the token's segment.

    That leaves the full packet's depth (offers above the price) room to fit: a CDS
    price stays below 386.5, an NSE or NFO one below 38.6 million.
    """
    return 0.9 * _MAX_WIRE_PRICE / price_divisor(token)


def _tick_rounded(price: float) -> float:
    return round(round(price / _TICK_SIZE) * _TICK_SIZE, 2)


async def _until(condition: Callable[[], bool], timeout: float = _COMMAND_TIMEOUT) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the Kite server's connections did not close")
        await asyncio.sleep(0.005)
