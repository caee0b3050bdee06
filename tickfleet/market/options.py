"""The simulated option chain of one stream: bounded state, priced as a whole each tick.

One ``MockOptionBook`` belongs to one stream, its single writer. Per-contract state
lives in NumPy arrays laid out once per contract set (``ChainLayout``), so a tick of
thousands of options is a handful of array operations; only adding or removing
contracts rebuilds the layout. The predecessor's mock state grew without bound; this
one is capped (least recently used contracts go first) and sheds expired contracts.

Evictions are reported twice on purpose: ``ensure`` returns the number and
``evict_expired`` the tokens evicted (for the caller's bookkeeping and tests), and the
injected ``Metrics``, when given, counts them as ``mock_evictions_total{reason}``.

A contract expires at the close of its expiry day. ``tick`` evicts what has expired
before it prices anything, so no contract is ever priced past its expiry instant; the
owner learns which ones went from ``take_expired``.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np

from tickfleet.market.blackscholes import Greeks, greeks
from tickfleet.market.contracts import MockOptionSnapshot, OptionContract
from tickfleet.market.depth import ChainBooks, ChainDepth, DepthSpec
from tickfleet.market.expiry import years_to_expiry
from tickfleet.market.hours import MarketHours
from tickfleet.market.layout import ChainLayout, FloatArray, IntArray
from tickfleet.market.smile import SmileSpec, smile_iv

if TYPE_CHECKING:
    from tickfleet.config.settings import Settings
    from tickfleet.market.snapshot import MockUnderlyingSnapshot
    from tickfleet.metrics.catalog import Labels, Metrics

__all__ = ["ChainSpec", "MockOptionBook", "MockOptionSnapshot", "OptionContract", "round_to_tick"]

_log = logging.getLogger(__name__)

EVICTIONS = "mock_evictions_total"


@dataclass(frozen=True, slots=True)
class ChainSpec:
    """How the chain is priced and how busy it looks.

    ``iv_noise`` is the relative standard deviation of the per-tick IV jitter; it is
    drawn per strike and expiry, so a call and its put always share one volatility
    and put-call parity holds. Activity figures are in lots per tick at the money;
    ``depth`` shapes the books a tick makes when asked (``tickfleet.market.depth``).
    """

    smile: SmileSpec = field(default_factory=SmileSpec)
    rate: float = 0.065
    hours: MarketHours = field(default_factory=MarketHours)  # expiry instants, timezone
    lot_size: int = 65  # of contracts that name none
    tick_size: float = 0.05
    iv_noise: float = 0.002
    trades_per_tick: float = 2.0
    open_interest_lots: float = 2000.0
    depth: DepthSpec = field(default_factory=DepthSpec)

    @classmethod
    def from_settings(cls, settings: Settings) -> ChainSpec:
        return cls(
            smile=SmileSpec.from_settings(settings),
            rate=settings.mock_risk_free_rate,
            hours=MarketHours.from_settings(settings),
            lot_size=settings.mock_lot_size,
        )


def round_to_tick(prices: FloatArray, tick_size: float) -> FloatArray:
    """Exchange prices: a multiple of the tick size, and never below one tick."""
    ticks = np.maximum(np.rint(prices / tick_size), 1.0)
    rounded: FloatArray = np.round(ticks * tick_size, 6)
    return rounded


class ChainArrays(NamedTuple):  # a tuple: made every chain tick, cheaply
    """The last chain tick as the book priced it, a column per field in ``tokens`` order:
    what its states say, for a consumer that takes a whole chain at once (the stream's
    bars). The book makes new columns every tick and never changes these, so a consumer
    may keep them without a copy."""

    tokens: tuple[int, ...]
    timestamp: float
    prices: FloatArray  # rounded as published
    volumes: IntArray
    ois: IntArray


class _NoMetrics:
    def inc(self, name: str, amount: float = 1.0, labels: Labels = None) -> None:
        pass

    def observe(self, name: str, value: float, labels: Labels = None) -> None:
        pass

    def observe_many(self, name: str, values: Sequence[float], labels: Labels = None) -> None:
        pass

    def set_gauge(self, name: str, value: float, labels: Labels = None) -> None:
        pass


class MockOptionBook:
    """Option state of one stream. Not thread-safe for writers: one stream owns it.

    Recency for the LRU cap is refreshed by ``ensure``: a stream re-ensures the
    contracts it still streams, and a tick prices every contract alike, so ticking
    does not reorder them. Readers of ``snapshot`` in other threads are safe: the
    latest states are swapped in as a whole dictionary, never mutated in place.
    """

    def __init__(
        self, spec: ChainSpec, *, max_size: int = 5000, metrics: Metrics | None = None
    ) -> None:
        if max_size <= 0:
            raise ValueError("max_size must be positive")
        self._spec = spec
        self._tz = ZoneInfo(spec.hours.tz)
        self._max_size = max_size
        self._metrics: Metrics = metrics if metrics is not None else _NoMetrics()
        self._contracts: OrderedDict[int, OptionContract] = OrderedDict()
        self._layout = ChainLayout.build(())
        self._volume: IntArray = np.zeros(0, dtype=np.int64)
        self._oi: IntArray = np.zeros(0, dtype=np.int64)
        self._lots: IntArray = np.zeros(0, dtype=np.int64)  # each contract's lot size
        self._dirty = False
        self._rebuilds = 0
        self._version = 0
        self._session: date | None = None
        self._latest: Mapping[int, MockOptionSnapshot] = {}
        self._expired: list[int] = []
        self.last_chain: ChainArrays | None = None
        self.last_depth: ChainDepth | None = None  # the books of the last tick, if asked
        self._books = ChainBooks(spec.depth, spec.tick_size)

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics | None = None) -> MockOptionBook:
        return cls(
            ChainSpec.from_settings(settings),
            max_size=settings.mock_state_max_size,
            metrics=metrics,
        )

    # --- the contract set -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._contracts)

    def __contains__(self, token: object) -> bool:
        return token in self._contracts

    @property
    def tokens(self) -> list[int]:
        """Tokens held, least recently used first."""
        return list(self._contracts)

    @property
    def rebuilds(self) -> int:
        """How often the array layout was rebuilt (once per change of the contract set)."""
        return self._rebuilds

    @property
    def version(self) -> int:
        """Number of ticks computed; every snapshot of a tick carries it."""
        return self._version

    def ensure(self, contracts: Iterable[OptionContract]) -> int:
        """Hold ``contracts`` and mark them most recently used; returns LRU evictions."""
        for contract in contracts:
            token = contract.instrument_token
            if self._contracts.get(token) != contract:
                self._contracts[token] = contract
                self._dirty = True
            self._contracts.move_to_end(token)
        evicted = [self._contracts.popitem(last=False)[0] for _ in range(self._overflow())]
        self._dropped(evicted, "lru")
        return len(evicted)

    def forget(self, tokens: Iterable[int]) -> int:
        """Stop holding ``tokens`` (e.g. unsubscribed); returns how many were held."""
        removed = [t for t in dict.fromkeys(tokens) if self._contracts.pop(t, None) is not None]
        self._dropped(removed, None)
        return len(removed)

    def evict_expired(self, now: datetime) -> list[int]:
        """Drop contracts whose expiry instant is at or before ``now``; returns their tokens."""
        last_expired = self._spec.hours.last_expired_day(now)
        expired = [t for t, c in self._contracts.items() if c.expiry <= last_expired]
        for token in expired:
            del self._contracts[token]
        self._dropped(expired, "expired")
        if expired:
            _log.info("Removed %d expired mock states", len(expired))
            self._expired.extend(expired)
        return expired

    def take_expired(self) -> list[int]:
        """Tokens evicted as expired since the last call (``tick`` evicts them itself)."""
        taken, self._expired = self._expired, []
        return taken

    def _overflow(self) -> int:
        return max(0, len(self._contracts) - self._max_size)

    def _dropped(self, tokens: list[int], reason: str | None) -> None:
        if not tokens:
            return
        self._dirty = True
        gone = set(tokens)
        self._latest = {t: s for t, s in self._latest.items() if t not in gone}
        if reason is not None:
            self._metrics.inc(EVICTIONS, len(tokens), {"reason": reason})

    # --- ticking ------------------------------------------------------------------------

    def snapshot(self, tokens: Iterable[int] | None = None) -> list[MockOptionSnapshot]:
        """Latest states of ``tokens`` (all by default); tokens never ticked are skipped."""
        latest = self._latest
        if tokens is None:
            return list(latest.values())
        return [latest[t] for t in tokens if t in latest]

    def tick(
        self,
        underlying: MockUnderlyingSnapshot,
        now: datetime,
        rng: np.random.Generator,
        *,
        depth: bool = False,
    ) -> list[MockOptionSnapshot]:
        """Price the whole chain on ``underlying`` at ``now``; returns every new state.
        With ``depth``, each contract's book is made too (``last_depth``), else it is None."""
        self.evict_expired(now)
        layout = self._current_layout()
        self.last_depth = None
        if not layout.tokens:
            return []
        self._roll_session(now)
        spot = underlying.price
        years = self._years(layout, now)
        iv = self._jittered_iv(layout, spot, years, rng)
        result = greeks(spot, layout.strikes, years, iv, layout.is_call, self._spec.rate)
        distance = np.abs(np.log(layout.strikes / spot))
        self._trade(distance, rng)
        self._version += 1
        # Rounded here, for the whole chain at once, to the precision published in ticks
        # (rounding each float in Python was most of the cost of serialising a tick).
        tick_size = self._spec.tick_size
        prices = np.round(round_to_tick(result.price, tick_size), 2)
        if depth:
            last_ticks = np.rint(prices / tick_size).astype(np.int64)
            self.last_depth = self._books.tick(
                last_ticks, 100.0 * distance, 365.0 * years, self._lots, rng
            )
        stamp = now.timestamp()
        states = self._states(layout, prices, iv, result, stamp)
        self._latest = dict(zip(layout.tokens, states, strict=True))
        self.last_chain = ChainArrays(layout.tokens, stamp, prices, self._volume, self._oi)
        return states

    def _current_layout(self) -> ChainLayout:
        if self._dirty:
            layout = ChainLayout.build(self._contracts.values())
            self._volume = layout.carry(self._layout, self._volume, 0)
            self._oi = layout.carry(self._layout, self._oi, -1)
            self._lots = np.where(layout.lot_sizes > 0, layout.lot_sizes, self._spec.lot_size)
            self._books.forget()
            self._layout, self._dirty = layout, False
            self._rebuilds += 1
        return self._layout

    def _roll_session(self, now: datetime) -> None:
        """Day volume starts from zero each session, as the exchange's does."""
        session = now.astimezone(self._tz).date()
        if session != self._session:
            self._volume = np.zeros_like(self._volume)  # never in place: see ChainArrays
            self._session = session

    def _years(self, layout: ChainLayout, now: datetime) -> FloatArray:
        tz = self._spec.hours.tz
        close = self._spec.hours.close
        per_expiry = np.array([years_to_expiry(now, e, tz, close) for e in layout.expiries])
        years: FloatArray = per_expiry[layout.expiry_rows]
        return years

    def _jittered_iv(
        self, layout: ChainLayout, spot: float, years: FloatArray, rng: np.random.Generator
    ) -> FloatArray:
        smile = self._spec.smile
        noise = 1.0 + self._spec.iv_noise * rng.standard_normal(layout.pair_count)
        iv = smile_iv(smile, layout.strikes, spot, years) * noise[layout.pair_rows]
        clamped: FloatArray = np.clip(iv, smile.floor, smile.cap)
        return clamped

    def _trade(self, distance: FloatArray, rng: np.random.Generator) -> None:
        """Volume grows, most near the money; open interest wanders by whole lots.
        ``distance`` is each strike's ``|ln(K/S)|``."""
        spec, lot_sizes = self._spec, self._lots
        fresh = self._oi < 0
        if fresh.any():
            lots = spec.open_interest_lots * np.exp(-distance[fresh] / 0.04) + 10.0
            self._oi = self._oi.copy()
            self._oi[fresh] = rng.poisson(lots) * lot_sizes[fresh]
        trades = rng.poisson(spec.trades_per_tick * np.exp(-distance / 0.02) + 0.05)
        self._volume = self._volume + trades * lot_sizes
        change = np.rint(0.3 * rng.standard_normal(len(distance))).astype(np.int64) * lot_sizes
        self._oi = np.maximum(self._oi + change, 0)

    def _states(
        self,
        layout: ChainLayout,
        prices: FloatArray,
        iv: FloatArray,
        result: Greeks,
        timestamp: float,
    ) -> list[MockOptionSnapshot]:
        version = self._version
        columns = zip(
            layout.contracts,
            prices.tolist(),
            self._volume.tolist(),
            self._oi.tolist(),
            np.round(iv, 6).tolist(),
            np.round(result.delta, 6).tolist(),
            np.round(result.gamma, 8).tolist(),
            np.round(result.theta, 4).tolist(),
            np.round(result.vega, 4).tolist(),
            strict=True,
        )
        return [
            MockOptionSnapshot(
                c.instrument_token,
                c.tradingsymbol,
                c.instrument_type,
                c.strike,
                c.expiry,
                price,
                volume,
                oi,
                vol,
                delta,
                gamma,
                theta,
                vega,
                timestamp,
                version,
            )
            for c, price, volume, oi, vol, delta, gamma, theta, vega in columns
        ]
