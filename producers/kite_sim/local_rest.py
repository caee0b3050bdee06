"""A local Kite-compatible REST server, for tests and for ``tickfleet kite-sim``.

The official ``kiteconnect`` client, pointed at it with ``root=server.url``, gets what
api.kite.trade would give it for the calls the fleet makes: the instruments dump
(``GET /instruments``, ``/instruments/{exchange}``, CSV in Kite's column order),
quotes (``GET /quote``, ``/quote/ltp``, ``/quote/ohlc`` with ``i=EXCHANGE:TRADINGSYMBOL``,
in the shapes of Kite's published reference responses) from a price table the test
sets, and historical candles (``GET /instruments/historical/{token}/{interval}``, rows
the test sets, cut to ``from``..``to`` read as exchange time, ``oi`` only when asked,
Kite's 400 for a range over its per-interval limit). Every request must carry
``Authorization: token api_key:access_token`` with an account's current token, else 403
and Kite's ``TokenException`` envelope; the accounts are ``local_server.AccessTokens``,
so a token is renewed or refused here as on the ticker server. Failures (any status,
429 included) and slow answers are set for every account or for one api key.

It is the standard library's threaded HTTP server on 127.0.0.1 in a background thread:
the client is synchronous, the volumes are a test's, and nothing else is needed. Every
request is recorded (path, instruments and parameters asked for, api key, status, when it
arrived), never its token.

    with KiteRestServer({"key": "token"}, instruments=rows) as rest:
        rest.set_price("NSE:NIFTY 50", 24012.5, close=23950.0)
        KiteConnect("key", "token", root=rest.url).ltp(["NSE:NIFTY 50"])
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from functools import partial
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Final, Self
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import orjson

from producers.kite_sim.local_server import DEFAULT_CREDENTIALS, AccessTokens
from tickfleet.instruments.csv_dump import write_dump
from tickfleet.instruments.model import Instrument
from tickfleet.kite.candles import Interval

_KITE_TIMEZONE: Final = ZoneInfo("Asia/Kolkata")  # Kite stamps quotes in exchange time
_INSTRUMENTS_OF_EXCHANGE: Final = re.compile(r"/instruments/([A-Z]+)")
_HISTORICAL: Final = re.compile(r"/instruments/historical/(\d+)/([0-9a-z]+)")
_KITE_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
_CIRCUIT: Final = 0.1  # the price band around the previous close
_TICK_SIZE: Final = 0.05
_DEPTH_LEVELS: Final = 5
_SOCKET_TIMEOUT: Final = 5.0  # a client that connects and sends nothing frees its thread
_STOP_TIMEOUT: Final = 10.0
_REFUSED: Final = "Incorrect `api_key` or `access_token`."


@dataclass(frozen=True, slots=True)
class RestRequest:
    """One request as the server saw it; its access token is never kept.

    ``instruments`` are the ``i`` query parameters, ``kite_version`` the
    ``X-Kite-Version`` header (None when absent), ``status`` the answer's HTTP status,
    ``params`` the other query parameters, ``received`` when the request arrived
    (``time.monotonic``, before any stall or delay: when Kite would count it).
    """

    path: str
    instruments: tuple[str, ...]
    api_key: str | None
    kite_version: str | None
    status: int
    params: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    received: float = field(default=0.0, compare=False)


@dataclass
class _Quote:
    """One instrument's day in the price table."""

    instrument_token: int
    last_price: float
    close: float
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0

    def __post_init__(self) -> None:
        self.open = self.high = self.low = self.last_price

    def move(self, price: float) -> None:
        self.last_price = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    content_type: str
    body: bytes


_Answer = Callable[[str, Message], _Reply]


class KiteRestServer:
    """Kite's REST API on loopback for the instruments dump and quotes.

    ``credentials`` maps each api key to the access token it holds; ``instruments`` are
    the dump's rows. start() returns once it listens, stop() joins its threads.
    """

    def __init__(
        self,
        credentials: Mapping[str, str] = DEFAULT_CREDENTIALS,
        *,
        instruments: Iterable[Instrument] = (),
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credentials = AccessTokens(credentials)
        self.api_key = self._credentials.first_api_key
        self._instruments = list(instruments)
        self._quotes: dict[str, _Quote] = {}
        self._clock = clock
        self._candles: dict[tuple[int, Interval], list[tuple[datetime, list[object]]]] = {}
        # Keyed by api key; None: every account (a key's own setting comes first).
        self._failures: dict[str | None, HTTPStatus] = {}
        self._delays: dict[str | None, float] = {}
        self._log: list[RestRequest] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("the Kite REST server is already running")
        self._flowing.set()
        self._httpd = _HttpServer(("127.0.0.1", self.port), partial(_Handler, self._answer))
        self.port = self._httpd.server_address[1]
        # A daemon, so that a test that forgets stop() cannot hang the interpreter at exit.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kite-rest",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Answer stalled requests, stop listening, wait for every request's thread."""
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self._flowing.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=_STOP_TIMEOUT)
        self._httpd = self._thread = None

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
        """The root to give the official client (``KiteConnect(root=...)``)."""
        return f"http://127.0.0.1:{self.port}"

    # --- commands --------------------------------------------------------------------------

    def set_instruments(self, instruments: Iterable[Instrument]) -> None:
        """Serve these rows as the dump from now on."""
        rows = list(instruments)
        with self._lock:
            self._instruments = rows

    def set_price(
        self,
        key: str,
        last_price: float,
        *,
        close: float | None = None,
        instrument_token: int | None = None,
    ) -> None:
        """Quote ``key`` ("NSE:NIFTY 50") at ``last_price`` from now on.

        The first price of a key opens its day (open, high, low) and is its previous
        close unless ``close`` says otherwise; later ones move high and low. The token
        comes from ``instrument_token``, else from the key's earlier quote or its dump
        row; ValueError when there is none.
        """
        exchange, _, symbol = key.partition(":")
        if not exchange or not symbol:
            raise ValueError(f"{key!r} is not EXCHANGE:TRADINGSYMBOL")
        with self._lock:
            quote = self._quotes.get(key)
            if quote is None:
                token = instrument_token
                if token is None:
                    token = self._listed_token(exchange, symbol)
                quote = _Quote(token, last_price, last_price if close is None else close)
                self._quotes[key] = quote
            quote.move(last_price)
            if close is not None:
                quote.close = close
            if instrument_token is not None:
                quote.instrument_token = instrument_token

    def set_access_token(self, access_token: str, *, api_key: str | None = None) -> None:
        """Accept only ``access_token`` for ``api_key`` (None: every account) from now on."""
        with self._lock:
            self._credentials.set_access_token(access_token, api_key)

    def refuse(self, refusing: bool = True, *, api_key: str | None = None) -> None:
        """Answer ``api_key``'s requests (None: every account's) with 403, or stop."""
        with self._lock:
            self._credentials.refuse(refusing, api_key)

    def set_candles(
        self, token: int, interval: Interval | str, rows: Iterable[Sequence[object]]
    ) -> None:
        """Serve these candles of ``token`` at ``interval`` from now on: rows in Kite's
        shape, ``[date, open, high, low, close, volume(, oi)]``, the date as Kite writes
        it (``2017-12-15T09:15:00+0530``)."""
        table = sorted(
            ((datetime.fromisoformat(str(row[0])), list(row)) for row in rows),
            key=lambda dated: dated[0],
        )
        with self._lock:
            self._candles[(token, Interval(interval))] = table

    def fail(
        self, status: int | None = HTTPStatus.SERVICE_UNAVAILABLE, *, api_key: str | None = None
    ) -> None:
        """Answer ``api_key``'s requests (None: every account's) with ``status`` and
        Kite's error envelope; None ends it.

        503 and 429 come as Kite's ``NetworkException``, any other status as
        ``GeneralException``.
        """
        with self._lock:
            if status is None:
                self._failures.pop(api_key, None)
            else:
                self._failures[api_key] = HTTPStatus(status)

    def slow(self, seconds: float | None, *, api_key: str | None = None) -> None:
        """Answer ``api_key``'s requests (None: every account's) ``seconds`` late; None
        ends it."""
        with self._lock:
            if seconds is None:
                self._delays.pop(api_key, None)
            else:
                self._delays[api_key] = seconds

    def stall(self) -> None:
        """Hold every request unanswered until ``resume`` (or ``stop``)."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    # --- observations ------------------------------------------------------------------------

    def request_log(self) -> list[RestRequest]:
        """Every request answered since start, in the order they were answered."""
        with self._lock:
            return list(self._log)

    # --- answering ---------------------------------------------------------------------------

    def _answer(self, target: str, headers: Message) -> _Reply:
        """Runs on a request's thread."""
        received = time.monotonic()
        self._flowing.wait()
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        api_key, access_token = _header_credentials(headers.get("Authorization"))
        with self._lock:
            delay = self._delays.get(api_key, self._delays.get(None, 0.0))
        if delay:
            time.sleep(delay)
        with self._lock:
            failure = self._failures.get(api_key, self._failures.get(None))
            if failure is not None:
                reply = _failure(failure)
            elif not self._credentials.accepts(api_key, access_token):
                reply = _error(HTTPStatus.FORBIDDEN, "TokenException", _REFUSED)
            else:
                reply = self._route(parts.path, query)
            request = RestRequest(
                parts.path,
                tuple(query.get("i", [])),
                api_key,
                headers.get("X-Kite-Version"),
                int(reply.status),
                tuple((k, v) for k, values in query.items() if k != "i" for v in values),
                received,
            )
            self._log.append(request)
        return reply

    def _route(self, path: str, query: Mapping[str, list[str]]) -> _Reply:
        historical = _HISTORICAL.fullmatch(path)
        if historical is not None:
            return self._historical(int(historical.group(1)), historical.group(2), query)
        if path == "/instruments":
            return _csv(write_dump(self._instruments))
        listed = _INSTRUMENTS_OF_EXCHANGE.fullmatch(path)
        if listed is not None:
            exchange = listed.group(1)
            return _csv(write_dump(i for i in self._instruments if i.exchange == exchange))
        shape = _QUOTE_SHAPES.get(path)
        if shape is None:
            return _error(HTTPStatus.NOT_FOUND, "GeneralException", "Route not found")
        stamp = datetime.fromtimestamp(self._clock(), _KITE_TIMEZONE).strftime("%Y-%m-%d %H:%M:%S")
        # Kite leaves out the instruments it does not know.
        keys = query.get("i", [])
        data = {key: shape(self._quotes[key], stamp) for key in keys if key in self._quotes}
        return _json(HTTPStatus.OK, {"status": "success", "data": data})

    def _historical(self, token: int, name: str, query: Mapping[str, list[str]]) -> _Reply:
        """The candles set for ``token`` from ``from`` to ``to``, both included."""
        try:
            interval = Interval(name)
        except ValueError:
            return _error(HTTPStatus.BAD_REQUEST, "InputException", "invalid interval")
        try:
            start, end = (_kite_time(query[end][0]) for end in ("from", "to"))
        except (KeyError, ValueError):
            return _error(HTTPStatus.BAD_REQUEST, "InputException", "invalid from or to date")
        if end - start > interval.max_range:
            message = f"interval exceeds max limit: {interval.max_days} days"
            return _error(HTTPStatus.BAD_REQUEST, "InputException", message)
        width = 7 if query.get("oi") == ["1"] else 6
        table = self._candles.get((token, interval), [])
        candles = [row[:width] for when, row in table if start <= when <= end]
        return _json(HTTPStatus.OK, {"status": "success", "data": {"candles": candles}})

    def _listed_token(self, exchange: str, symbol: str) -> int:
        for instrument in self._instruments:
            if instrument.exchange == exchange and instrument.tradingsymbol == symbol:
                return instrument.instrument_token
        raise ValueError(f"{exchange}:{symbol} is not in the dump: give its instrument_token")


class _HttpServer(ThreadingHTTPServer):
    # Request threads are joined on close, so that stop() leaves no thread behind.
    daemon_threads = False
    block_on_close = True


class _Handler(BaseHTTPRequestHandler):
    """Carries a request to the server's ``_answer`` and its reply back."""

    timeout = _SOCKET_TIMEOUT
    server_version = "KiteLocal/1"

    def __init__(self, answer: _Answer, *args: object) -> None:
        self._respond = answer
        super().__init__(*args)  # type: ignore[arg-type]  # socketserver's own arguments

    def do_GET(self) -> None:
        reply = self._respond(self.path, self.headers)
        with contextlib.suppress(ConnectionError):  # a client that gave up on a stall
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the server keeps its own log, and stderr is the test runner's."""


def _header_credentials(value: str | None) -> tuple[str | None, str | None]:
    """``token api_key:access_token`` split in two (None for what is missing)."""
    if value is None or not value.startswith("token "):
        return None, None
    api_key, colon, access_token = value.removeprefix("token ").partition(":")
    return api_key, access_token if colon else None


def _csv(text: str) -> _Reply:
    return _Reply(HTTPStatus.OK, "text/csv", text.encode())


def _json(status: HTTPStatus, document: object) -> _Reply:
    return _Reply(status, "application/json", orjson.dumps(document))


def _error(status: HTTPStatus, error_type: str, message: str) -> _Reply:
    envelope = {"status": "error", "message": message, "data": None, "error_type": error_type}
    return _json(status, envelope)


def _kite_time(text: str) -> datetime:
    """``yyyy-mm-dd hh:mm:ss`` as Kite reads it: exchange time."""
    return datetime.strptime(text, _KITE_TIME_FORMAT).replace(tzinfo=_KITE_TIMEZONE)


def _failure(status: HTTPStatus) -> _Reply:
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        return _error(status, "NetworkException", "Service unavailable, try again later.")
    if status == HTTPStatus.TOO_MANY_REQUESTS:
        return _error(status, "NetworkException", "Too many requests")
    return _error(status, "GeneralException", f"{status.value} {status.phrase}")


def _ohlc(quote: _Quote) -> dict[str, float]:
    return {"open": quote.open, "high": quote.high, "low": quote.low, "close": quote.close}


def _ltp_shape(quote: _Quote, stamp: str) -> dict[str, object]:
    return {"instrument_token": quote.instrument_token, "last_price": quote.last_price}


def _ohlc_shape(quote: _Quote, stamp: str) -> dict[str, object]:
    return {**_ltp_shape(quote, stamp), "ohlc": _ohlc(quote)}


def _full_shape(quote: _Quote, stamp: str) -> dict[str, object]:
    """The full quote of an instrument nobody trades here: no volume, an empty book."""
    empty = [{"price": 0, "quantity": 0, "orders": 0}] * _DEPTH_LEVELS
    return {
        "instrument_token": quote.instrument_token,
        "timestamp": stamp,
        "last_trade_time": stamp,
        "last_price": quote.last_price,
        "last_quantity": 0,
        "buy_quantity": 0,
        "sell_quantity": 0,
        "volume": 0,
        "average_price": quote.last_price,
        "oi": 0,
        "oi_day_high": 0,
        "oi_day_low": 0,
        "net_change": round(quote.last_price - quote.close, 2),
        "lower_circuit_limit": _tick_rounded(quote.close * (1 - _CIRCUIT)),
        "upper_circuit_limit": _tick_rounded(quote.close * (1 + _CIRCUIT)),
        "ohlc": _ohlc(quote),
        "depth": {"buy": empty, "sell": empty},
    }


_QUOTE_SHAPES: Final[Mapping[str, Callable[[_Quote, str], dict[str, object]]]] = {
    "/quote": _full_shape,
    "/quote/ltp": _ltp_shape,
    "/quote/ohlc": _ohlc_shape,
}


def _tick_rounded(price: float) -> float:
    return round(round(price / _TICK_SIZE) * _TICK_SIZE, 2)
