"""The simulated chain's market depth: five bids and five offers a contract, a chain at once.

A consumer that reads liquidity from a full-mode tick's depth (the predecessor's did)
needs a book to read off-hours, and one it can trust: bids below the last price and
offers above it, on the tick grid, best first, sizes in whole lots. The books are made for
the whole chain in a few array operations on the book's own random generator, so they are
deterministic and cost a chain what one contract would in Python.

How a book looks: the gap between the best bid and the best offer widens away from the
money and as expiry nears (``DepthSpec``); the last price sits inside it, at a random
distance from either side; the levels behind the best step away by a tick or more; a level
holds more lots near the money, and at most one order a lot. A bid that would fall below
one tick does not exist (Kite sends such a level as zeros, and so does this book).

A book's shape (each level's distance from the last price, its lots and orders) is made
again every ``DepthSpec.refresh_ticks`` ticks; between, it moves with the last price.
Made again every tick, the books and their JSON cost about 150 ns a tick more (400-option
chain, 815 against 666 ns a tick in one run), where pricing a kept shape is a few array
operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from tickfleet.market.layout import FloatArray, IntArray

Bytes = NDArray[np.uint8]

LEVELS = 5  # a side, as Kite's full mode sends
_DAY_FLOOR = 1.0 / 24.0  # an hour: the gap stops widening there (and never divides by 0)


@dataclass(frozen=True, slots=True)
class DepthSpec:
    """How wide and deep the simulated books are, and how often they are made again.

    The gap between the best bid and the best offer, in ticks, is
    ``min_gap + floor(per_percent * m + near_expiry / sqrt(days))`` with ``m`` the
    distance from the money in percent (``100 |ln(K/S)|``) and ``days`` to expiry. A
    level holds 1 to ``1 + lots_at_money * exp(-m / lots_decay_percent)`` lots, with 1 to
    ``max_orders`` orders (never more orders than lots).
    """

    min_gap: int = 2
    per_percent: float = 0.8
    near_expiry: float = 3.0
    lots_at_money: float = 40.0
    lots_decay_percent: float = 2.0
    max_orders: int = 20
    refresh_ticks: int = 5

    def __post_init__(self) -> None:
        if self.min_gap < 2:
            raise ValueError("min_gap must be at least 2 ticks: a bid below and an offer above")
        if min(self.per_percent, self.near_expiry, self.lots_at_money) < 0:
            raise ValueError("widening and lots must be >= 0")
        if not 1 <= self.max_orders <= 99 or self.lots_decay_percent <= 0:
            raise ValueError("max_orders must be 1..99 and lots_decay_percent > 0")
        if self.refresh_ticks < 1:
            raise ValueError("refresh_ticks must be at least 1")

    def gaps(self, moneyness: FloatArray, days: FloatArray) -> IntArray:
        """Ticks between the best bid and the best offer of each contract."""
        widening = self.per_percent * moneyness + self.near_expiry / np.sqrt(
            np.maximum(days, _DAY_FLOOR)
        )
        gaps: IntArray = self.min_gap + np.floor(widening).astype(np.int64)
        return gaps


class ChainDepth(NamedTuple):
    """The books of a chain at one tick, a column per contract in the chain's order and ten
    levels a column: the five bids best first (rows 0-4), then the five offers best first
    (5-9); level-major, so that every operation on a level runs along the whole chain.

    Prices are in ticks of ``tick_size``; a level that does not exist is zeros. ``buy`` and
    ``sell`` are each book's totals, the sums of its sides. Arrays are never changed once
    handed out: a tick whose quantities, orders or totals are those of the tick before
    hands the same arrays again, so a consumer may keep what it made of them.
    """

    ticks: IntArray
    quantities: IntArray
    orders: IntArray
    buy: IntArray
    sell: IntArray
    tick_size: float

    def prices(self) -> FloatArray:
        """Level prices in rupees, rounded as published."""
        prices: FloatArray = np.round(self.ticks * self.tick_size, 2)
        return prices


class _Shape(NamedTuple):
    """Books apart from their prices: each level's signed distance from the last price."""

    offsets: IntArray
    quantities: IntArray
    orders: IntArray


class ChainBooks:
    """The books of one chain layout, kept between ticks: their shapes made every
    ``refresh_ticks`` ticks (and when the chain changes), priced at each tick's last prices."""

    def __init__(self, spec: DepthSpec, tick_size: float) -> None:
        self._spec = spec
        self._tick_size = tick_size
        self._shape: _Shape | None = None
        self._age = 0
        self._last: ChainDepth | None = None
        self._empty: NDArray[np.bool_] | None = None

    def forget(self) -> None:
        """The chain's contracts changed: make every book again at the next tick."""
        self._shape = None

    def tick(
        self,
        last_ticks: IntArray,
        moneyness: FloatArray,
        days: FloatArray,
        lot_sizes: IntArray,
        rng: np.random.Generator,
    ) -> ChainDepth:
        """The books at ``last_ticks`` (in ticks, at least one each); ``moneyness`` is
        ``100 |ln(K/S)|``, ``days`` to expiry, in the chain's order."""
        shape = self._shape
        if shape is None or self._age >= self._spec.refresh_ticks:
            shape = _make(self._spec, moneyness, days, lot_sizes, rng)
            self._shape, self._age, self._empty = shape, 0, None
        self._age += 1
        ticks = shape.offsets + last_ticks
        empty = ticks < 1  # a bid below one tick is no level
        np.maximum(ticks, 0, out=ticks)
        last = self._last
        if last is None or self._empty is None or not np.array_equal(empty, self._empty):
            present = ~empty
            quantities, orders = shape.quantities * present, shape.orders * present
            sides = quantities.reshape(2, LEVELS, -1).sum(axis=1)
            last = ChainDepth(ticks, quantities, orders, sides[0], sides[1], self._tick_size)
            self._empty = empty
        self._last = last = last._replace(ticks=ticks)
        return last


def _make(
    spec: DepthSpec,
    moneyness: FloatArray,
    days: FloatArray,
    lot_sizes: IntArray,
    rng: np.random.Generator,
) -> _Shape:
    """New books for a chain: 30 random bytes a contract from ``rng``'s generator, one for
    each level's step from the one before, its lots and its orders (a byte ``b`` picks among
    ``count`` as ``b * count >> 8``); the best levels' two steps place the last price in
    the gap."""
    n = len(moneyness)
    raw = rng.bit_generator.random_raw(-(-_BYTES * n // 8)).view(np.uint8)
    bits = raw[: _BYTES * n].reshape(_BYTES, n)
    lots, orders = _sizes(bits, moneyness, spec)
    return _Shape(_offsets(bits, spec.gaps(moneyness, days)), lots * lot_sizes, orders)


def _offsets(bits: Bytes, gaps: IntArray) -> IntArray:
    """Each level's distance from the last price, in ticks (bids negative): the best bid's
    below it, the best offer's the rest of the gap, then a tick or more a level, the wider
    the gap the wider the steps."""
    n = len(gaps)
    steps: IntArray = np.multiply(bits[_STEPS], np.maximum(gaps // 2, 1), dtype=np.int64)
    steps >>= 8
    steps += 1
    below = 1 + (((bits[0].astype(np.int64) << 8) + bits[LEVELS]) * (gaps - 1) >> 16)
    steps[0] = below
    np.subtract(gaps, below, out=steps[LEVELS])
    offsets: IntArray = np.cumsum(steps.reshape(2, LEVELS, n), axis=1).reshape(2 * LEVELS, n)
    offsets[:LEVELS] *= -1  # bids below the last price, offers above
    return offsets


def _sizes(bits: Bytes, moneyness: FloatArray, spec: DepthSpec) -> tuple[IntArray, IntArray]:
    """Each level's lots (more near the money) and orders (at most one a lot)."""
    most = 1 + (spec.lots_at_money * np.exp(-moneyness / spec.lots_decay_percent)).astype(np.int64)
    lots: IntArray = np.multiply(bits[_LOTS], most, dtype=np.int64)
    lots >>= 8
    lots += 1
    cap = np.minimum(lots, spec.max_orders)
    orders: IntArray = np.multiply(bits[_ORDERS], cap, dtype=np.int64)
    orders >>= 8
    orders += 1
    return lots, orders


_STEPS = slice(0, 2 * LEVELS)  # a contract's random bytes: steps, lots, orders
_LOTS = slice(_STEPS.stop, _STEPS.stop + 2 * LEVELS)
_ORDERS = slice(_LOTS.stop, _LOTS.stop + 2 * LEVELS)
_BYTES = _ORDERS.stop
