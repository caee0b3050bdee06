"""``GET /history``: candles from the fleet's own bars, and from Kite where it has none.

The fleet's bars of a token begin when the fleet first streamed it. A range from then on
is answered from them (``source: fleet``); what lies before is asked of Kite through the
accounts (``kite``); a range across that instant takes both (``mixed``). Gaps inside the
fleet's span (an outage, hours it did not stream the token) are left as gaps: asking Kite
for every hole would spend its three requests a second on ranges nobody traded in.

Larger intervals are rolled up from the one-minute bars in market time, the way Kite
cuts them: intraday candles from the session's open (09:15, 09:25, … for 10minute; 09:15,
10:15, … for 60minute), day candles per market date, stamped at midnight. With
``history_bar_seconds`` shortened (tests), an n-minute candle is n bars.

Options asked with ``oi`` also carry IV and greeks at each candle's close against the
underlying's close of the same candle (``tickfleet.market.enrichment``, as live ticks).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np

from tickfleet.accounts.config import Account
from tickfleet.config.underlyings import KNOWN, Underlying
from tickfleet.history.bar_store import Bar, BarStore
from tickfleet.history.kite_source import History, HistoryError, KiteUnavailableError
from tickfleet.instruments import Instrument
from tickfleet.kite.candles import Candle, CandleQuery, Interval, RangeError
from tickfleet.market.enrichment import enrich
from tickfleet.market.expiry import SECONDS_PER_YEAR
from tickfleet.market.hours import MarketHours

_OPTION_TYPES: Final = ("CE", "PE")
_GREEKS: Final = ("iv", "delta", "gamma", "theta", "vega")


class HistoryRequestError(ValueError):
    """A request that cannot be answered as asked (400)."""


class UnknownInstrumentError(LookupError):
    """A token the registry does not list (404)."""


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """The route's query, its times zoned (naive ones read in the market's timezone)."""

    token: int
    start: datetime
    end: datetime
    interval: Interval = Interval.MINUTE
    account_id: str | None = None
    continuous: bool = False
    oi: bool = False


@dataclass(frozen=True, slots=True)
class HistorySources:
    """What the service reads: the registry, the fleet's bars, Kite, the accounts."""

    instrument: Callable[[int], Instrument | None]
    bars: BarStore
    kite: Callable[[CandleQuery, str | None], History]
    accounts: Callable[[], Sequence[Account]]


@dataclass(frozen=True, slots=True)
class _Part:
    candles: list[Candle]
    fleet: bool
    kite: bool
    missing: str | None = None  # why the part before the fleet's bars is not there


class HistoryService:
    def __init__(
        self, sources: HistorySources, hours: MarketHours, bar_seconds: float, rate: float
    ) -> None:
        self._sources = sources
        self._hours = hours
        self._tz = ZoneInfo(hours.tz)
        self._bar = bar_seconds
        self._rate = rate

    def answer(self, request: HistoryRequest) -> dict[str, Any]:
        """The predecessor's document: raises HistoryRequestError (400),
        UnknownInstrumentError (404), RangeTooLargeError (422), and Kite's errors
        (``KiteUnavailableError``, ``KiteRejectedError``: 502)."""
        row = self._check(request)
        part = self._candles(request)
        candles = [_document(c, request.oi) for c in part.candles]
        if request.oi and row.instrument_type in _OPTION_TYPES and row.expiry is not None:
            self._add_greeks(request, row, part.candles, candles)
        source = "mixed" if part.fleet and part.kite else "kite" if part.kite else "fleet"
        document: dict[str, Any] = {
            "instrument_token": row.instrument_token,
            "symbol": row.name,
            "tradingsymbol": row.tradingsymbol,
            "segment": row.segment,
            "interval": request.interval.value,
            "from_ts": request.start.astimezone(self._tz).isoformat(),
            "to_ts": request.end.astimezone(self._tz).isoformat(),
            "candles": candles,
            "source": source,
        }
        if part.missing is not None:
            document["missing"] = {
                "from_ts": request.start.astimezone(self._tz).isoformat(),
                "reason": part.missing,
            }
        return document

    def _check(self, request: HistoryRequest) -> Instrument:
        for end in (request.start, request.end):
            if not _EARLIEST <= end < _LATEST:
                raise HistoryRequestError(f"{end.isoformat()} is outside 1970 to 2099")
        if request.end <= request.start:
            raise HistoryRequestError(
                f"to_ts ({request.end.isoformat()}) must be after from_ts "
                f"({request.start.isoformat()})"
            )
        try:
            self._query(request, request.start, request.end).check()
        except RangeError as exc:
            if type(exc) is RangeError:
                raise HistoryRequestError(str(exc)) from None
            raise
        known = {a.account_id for a in self._sources.accounts()}
        if request.account_id is not None and request.account_id not in known:
            raise HistoryRequestError(
                f"unknown account {request.account_id!r} (the fleet has: "
                f"{', '.join(sorted(known)) or 'none'})"
            )
        row = self._sources.instrument(request.token)
        if row is None:
            raise UnknownInstrumentError(f"instrument {request.token} is not in the registry")
        return row

    # --- candles --------------------------------------------------------------------------

    def _candles(self, request: HistoryRequest) -> _Part:
        """The fleet's candles from its first bar of the token on, Kite's before.

        Kite unreachable fails the request when only Kite could serve it; across the
        fleet's first bar, the fleet's candles are answered and the rest named missing.
        """
        first = self._sources.bars.first_start(request.token)
        begins = None if first is None else self._bucket(first, request.interval)
        if begins is None or begins > request.end:
            return _Part(self._kite(request, request.end, None), fleet=False, kite=True)
        fleet = self._fleet(request, max(request.start, begins))
        if request.start >= begins:
            return _Part(fleet, fleet=True, kite=False)
        try:
            kite = self._kite(request, begins - _SECOND, begins)
        except KiteUnavailableError as exc:
            return _Part(fleet, fleet=True, kite=False, missing=str(exc))
        return _Part(kite + fleet, fleet=True, kite=True)

    def _kite(
        self, request: HistoryRequest, until: datetime, before: datetime | None
    ) -> list[Candle]:
        history = self._sources.kite(self._query(request, request.start, until), request.account_id)
        return [c for c in history.candles if before is None or c.date < before]

    def _query(self, request: HistoryRequest, start: datetime, end: datetime) -> CandleQuery:
        return CandleQuery(
            request.token, start, end, request.interval, request.continuous, request.oi
        )

    def _fleet(self, request: HistoryRequest, start: datetime) -> list[Candle]:
        span = self._span(request.interval)
        first = int(start.timestamp() - span)
        last = int(request.end.timestamp() + span)
        bars = self._sources.bars.read(request.token, first, last)
        candles = self._roll_up(bars, request.interval)
        return [c for c in candles if start <= c.date <= request.end]

    def _span(self, interval: Interval) -> float:
        if interval is Interval.DAY:
            return 86_400.0
        return interval.bar / timedelta(minutes=1) * self._bar

    def _bucket(self, start: float, interval: Interval) -> datetime:
        """The start of the ``interval`` candle a bar starting at ``start`` falls in."""
        local = datetime.fromtimestamp(start, self._tz)
        if interval is Interval.DAY:
            return datetime.combine(local.date(), time(), tzinfo=self._tz)
        span = self._span(interval)
        anchor = _session_open(local.date(), self._hours.open, self._tz).timestamp()
        return datetime.fromtimestamp(anchor + math.floor((start - anchor) / span) * span, self._tz)

    def _roll_up(self, bars: Sequence[Bar], interval: Interval) -> list[Candle]:
        candles: dict[datetime, Candle] = {}
        for bar in bars:
            when = self._bucket(bar.start, interval)
            known = candles.get(when)
            candles[when] = (
                Candle(when, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.oi)
                if known is None
                else _extend(known, bar)
            )
        return list(candles.values())

    # --- greeks ---------------------------------------------------------------------------

    def _add_greeks(
        self,
        request: HistoryRequest,
        row: Instrument,
        candles: Sequence[Candle],
        documents: list[dict[str, Any]],
    ) -> None:
        """IV and greeks at each candle's close, against the close of the same candle of
        the option's own index; null where the index has no such candle, is not one the
        fleet knows, or no volatility fits."""
        if not candles:
            return
        spot = self._index_closes(request, KNOWN.get(row.underlying))
        expiry = self._hours.expiry_instant(row.expiry).timestamp() if row.expiry else math.nan
        closes = [c.date.timestamp() + self._span(request.interval) for c in candles]
        enriched = enrich(
            np.array([c.close for c in candles]),
            np.array([spot.get(c.date, math.nan) for c in candles]),
            float(row.strike),
            (expiry - np.minimum(np.array(closes), expiry)) / SECONDS_PER_YEAR,
            row.instrument_type == "CE",
            self._rate,
        )
        columns = [getattr(enriched, name).tolist() for name in _GREEKS]
        for i, (document, candle) in enumerate(zip(documents, candles, strict=True)):
            document["underlying"] = spot.get(candle.date)
            for name, values in zip(_GREEKS, columns, strict=True):
                document[name] = None if math.isnan(values[i]) else values[i]

    def _index_closes(
        self, request: HistoryRequest, index: Underlying | None
    ) -> dict[datetime, float]:
        """Closes of the option's index over the request's candles (none if unknown)."""
        if index is None:
            return {}
        candles = HistoryRequest(
            index.index_token, request.start, request.end, request.interval, request.account_id
        )
        try:
            return {c.date: c.close for c in self._candles(candles).candles}
        except HistoryError:
            return {}  # no index candles: greeks are null, the candles still served


_SECOND: Final = timedelta(seconds=1)
_EARLIEST: Final = datetime(1970, 1, 2, tzinfo=ZoneInfo("UTC"))
_LATEST: Final = datetime(2100, 1, 1, tzinfo=ZoneInfo("UTC"))


def _extend(candle: Candle, bar: Bar) -> Candle:
    """A candle with one more bar (bars come oldest first)."""
    return Candle(
        candle.date, candle.open, max(candle.high, bar.high), min(candle.low, bar.low),
        bar.close, candle.volume + bar.volume, bar.oi if bar.oi is not None else candle.oi,
    )  # fmt: skip


def _session_open(day: date, at: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


def _document(candle: Candle, oi: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "date": candle.date.isoformat(),
        "open": candle.open,
        "high": candle.high,
        "low": candle.low,
        "close": candle.close,
        "volume": candle.volume,
    }
    if oi:
        document["oi"] = candle.oi
    return document
