"""What a published option tick's depth must satisfy, as a consumer reads it (parsed JSON)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

LEVEL_KEYS = {"quantity": int, "price": float, "orders": int}


def _level(level: dict[str, Any]) -> tuple[int, float, int]:
    assert set(level) == set(LEVEL_KEYS), level
    for key, kind in LEVEL_KEYS.items():
        assert type(level[key]) is kind, (key, level)
    return level["quantity"], level["price"], level["orders"]


def _on_grid(price: float, tick_size: float) -> bool:
    ticks = price / tick_size
    return abs(ticks - round(ticks)) < 1e-6 and round(price, 2) == price


def check_depth(tick: dict[str, Any]) -> float | None:
    """Assert that a full-mode tick's book is coherent: five levels a side in Kite's shape,
    prices on the tick grid, bids strictly descending below the last price and offers
    strictly ascending above it, missing bids (zeros) only behind present ones, quantities
    in whole lots with 1 to a lot's worth of orders, the totals the sides' sums. Returns the
    spread (best offer less best bid; None without a bid)."""
    depth, last, lot = tick["depth"], tick["last_price"], tick["lot_size"]
    assert set(depth) == {"buy", "sell"} and len(depth["buy"]) == len(depth["sell"]) == 5
    buy = [_level(x) for x in depth["buy"]]
    sell = [_level(x) for x in depth["sell"]]
    present = [x for x in buy if x[0]]
    assert buy[len(present) :] == [(0, 0.0, 0)] * (5 - len(present)), buy
    for quantity, price, orders in present + sell:
        assert quantity > 0 and quantity % lot == 0, (quantity, lot)
        assert 1 <= orders <= quantity // lot, (orders, quantity)
        assert _on_grid(price, tick["tick_size"]), price
    bids, offers = [p for _, p, _ in present], [p for _, p, _ in sell]
    assert all(a > b for a, b in pairwise(bids)), bids
    assert all(a < b for a, b in pairwise(offers)), offers
    assert (not bids or bids[0] < last) and last < offers[0], (bids, last, offers)
    assert tick["total_buy_quantity"] == sum(q for q, _, _ in buy)
    assert tick["total_sell_quantity"] == sum(q for q, _, _ in sell)
    return round(offers[0] - bids[0], 2) if bids else None
