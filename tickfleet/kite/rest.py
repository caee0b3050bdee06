"""The fleet's Kite REST calls, made by the official ``kiteconnect`` client.

Three calls: the instruments dump, for the registry refresh of an account with a
session; last prices, to seed the simulated market where the real one closed; and
historical candles. The official client knows Kite's routes, headers and envelopes;
this adapter checks and types what comes back, and sorts failures into the two a caller
acts on differently: ``KiteSessionRefused`` (Kite refused the access token: retrying
will not help until there is a new one) and ``KiteUnavailable`` (network, timeout, 5xx,
and ``KiteRateLimited`` for 429: try again later). Anything else Kite refuses, or
answers unreadably, is their base ``KiteRestError``; each carries Kite's HTTP status
when there was one.
No message carries the access token: it travels only in the Authorization header,
and is masked should a message ever echo it.

``kiteconnect`` is synchronous (``requests``): code on an event loop calls these methods
in a thread (``asyncio.to_thread``). One client per thread, since the ``requests``
session it keeps is not documented as thread-safe. The client joins its routes to the
root's host, so a path in ``root`` is not kept (Kite's own root has none).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout

from tickfleet.config.settings import Settings
from tickfleet.kite.candles import KITE_TIMEZONE, Candle, CandleError, CandleQuery

KITE_API_URL: Final = "https://api.kite.trade"
DEFAULT_TIMEOUT: Final = 30.0
"""Seconds per request: the full dump is tens of megabytes."""
LTP_BATCH: Final = 1000
"""Kite answers last prices for at most this many instruments a request."""

_MASK: Final = "***"


class KiteRestError(Exception):
    """Kite did not give what was asked: a refused request or an answer not understood.

    ``status`` is Kite's HTTP status, None when no answer came (or none was readable)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KiteSessionRefused(KiteRestError):  # noqa: N818 - the name callers are specified with
    """Kite refused the access token (403, ``TokenException``): invalid, expired or revoked."""


class KiteUnavailable(KiteRestError):  # noqa: N818 - the name callers are specified with
    """Kite could not be reached, did not answer in time, or failed (5xx)."""


class KiteRateLimited(KiteUnavailable):
    """Kite refused the request as one too many for the api key (429)."""


class KiteRestClient:
    """One account's REST session with Kite: its api key, access token and root URL."""

    def __init__(
        self,
        api_key: str,
        access_token: str,
        *,
        root: str = KITE_API_URL,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.api_key = api_key
        self.root = root
        self._secrets = [s for s in (access_token, quote_plus(access_token)) if s]
        # Imported here: the package's import pulls its WebSocket ticker and Twisted (0.2 s
        # of CPU), which every fleet process that merely could call Kite would pay.
        from kiteconnect import KiteConnect  # noqa: PLC0415

        self._kite = KiteConnect(api_key, access_token, root=root, timeout=timeout)

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = DEFAULT_TIMEOUT) -> Self:
        """The account of ``KITE_API_KEY``/``KITE_ACCESS_TOKEN`` at ``KITE_API_URL``."""
        if not settings.kite_api_key or settings.kite_access_token is None:
            raise ValueError("KITE_API_KEY and KITE_ACCESS_TOKEN are both needed for Kite REST")
        return cls(
            settings.kite_api_key,
            settings.kite_access_token.get_secret_value(),
            root=settings.kite_api_url,
            timeout=timeout,
        )

    def close(self) -> None:
        """Close the pooled HTTP connections."""
        self._kite.reqsession.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KiteRestClient(api_key={self.api_key!r}, root={self.root!r})"

    def instruments_dump(self, exchange: str | None = None) -> str:
        """The dump's CSV text, as ``tickfleet.instruments.parse_dump`` reads it.

        Every exchange's instruments, or only ``exchange``'s ("NFO"). The official
        ``instruments()`` would parse the CSV into its own dicts; the fleet's parser
        wants the text, so this asks the client's request layer (``_get``, with the
        client's route names) for the answer before that step.
        """
        what = "instruments dump"
        with self._translated(what):
            if exchange is None:
                body = self._kite._get("market.instruments.all")
            else:
                body = self._kite._get("market.instruments", url_args={"exchange": exchange})
        if not isinstance(body, bytes):
            raise KiteRestError(f"{what}: Kite answered {type(body).__name__}, not CSV")
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise KiteRestError(f"{what}: the CSV is not UTF-8 ({exc.reason})") from None

    def last_prices(self, keys: Iterable[str]) -> dict[str, float]:
        """Last traded price of each ``EXCHANGE:TRADINGSYMBOL`` key ("NSE:NIFTY 50").

        Kite leaves out keys it does not know, and so does the result.
        """
        wanted = list(dict.fromkeys(keys))
        prices: dict[str, float] = {}
        for start in range(0, len(wanted), LTP_BATCH):
            with self._translated("last prices"):
                answer = self._kite.ltp(wanted[start : start + LTP_BATCH])
            prices |= _last_prices(answer)
        return prices

    def historical_data(self, query: CandleQuery, tz: ZoneInfo = KITE_TIMEZONE) -> list[Candle]:
        """``query``'s candles, in one request, their dates in ``tz``.

        Kite reads ``from`` and ``to`` as exchange time, so both ends are sent as such
        whatever their zone. The range is not checked here (``CandleQuery.check``): a
        range too large is Kite's 400.
        """
        what = f"{query.interval.value} candles of {query.token}"
        with self._translated(what):
            records = self._kite.historical_data(
                query.token,
                query.start.astimezone(KITE_TIMEZONE),
                query.end.astimezone(KITE_TIMEZONE),
                query.interval.value,
                continuous=query.continuous,
                oi=query.oi,
            )
        if not isinstance(records, list):
            raise KiteRestError(f"{what}: Kite answered {type(records).__name__}, not candles")
        try:
            return [Candle.from_kite(record, tz) for record in records]
        except CandleError as exc:
            raise KiteRestError(f"{what}: {exc}") from None

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        """The official client's and ``requests``' failures as this module's errors."""
        from kiteconnect.exceptions import KiteException, TokenException  # noqa: PLC0415

        try:
            yield
        except TokenException as exc:
            raise KiteSessionRefused(self._describe(what, exc), status=exc.code) from None
        except KiteException as exc:
            raise _kind(exc.code)(self._describe(what, exc), status=exc.code) from None
        except (LookupError, TypeError, ValueError) as exc:
            # The official client read an envelope without the fields it expects.
            raise KiteRestError(self._describe(what, exc)) from None
        except (RequestsConnectionError, Timeout) as exc:
            raise KiteUnavailable(self._describe(what, exc)) from None

    def _describe(self, what: str, exc: BaseException) -> str:
        """Why ``what`` failed, fit for a log. The cause is not chained, so that a
        traceback cannot show what this message masks."""
        code = getattr(exc, "code", None)
        status = f" (HTTP {code})" if isinstance(code, int) else ""
        message = f"{what} from {self.root}: {type(exc).__name__}{status}: {exc}"
        for secret in self._secrets:
            message = message.replace(secret, _MASK)
        return message


def _kind(status: int) -> type[KiteRestError]:
    if status == 429:
        return KiteRateLimited
    return KiteUnavailable if status >= 500 else KiteRestError


def _last_prices(answer: object) -> dict[str, float]:
    """``{key: {"instrument_token": ..., "last_price": ...}}`` as ``{key: price}``."""
    if not isinstance(answer, dict):
        raise KiteRestError(f"last prices: Kite answered {type(answer).__name__}, not an object")
    prices: dict[str, float] = {}
    for key, quote in answer.items():
        price = quote.get("last_price") if isinstance(quote, dict) else None
        if isinstance(price, bool) or not isinstance(price, int | float):
            raise KiteRestError(f"last prices: no last_price for {key!r}")
        prices[str(key)] = float(price)
    return prices
