"""An option chain: one expiry's streamed strikes, calls beside puts, from latest ticks.

The fleet keeps the latest tick of every token it streams now in two Redis hashes (a
token the fleet stops streaming leaves them), so a chain is one HVALS per hash away, with
no database and no subscription. The terminal (``tickfleet chain``) and the browser page
(``/chain``) draw the same ``Chain``; the page gets each side's figures as ``cells``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from redis.cluster import RedisCluster

from tickfleet.ticks.channels import Channels

Tick = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChainRow:
    strike: float
    call: Tick | None
    put: Tick | None


@dataclass(frozen=True, slots=True)
class Chain:
    """One expiry's strikes as the fleet streams them, and the underlying's latest tick."""

    expiry: str | None
    expiries: list[str]
    rows: list[ChainRow]
    underlying: Tick | None


def build_chain(options: Iterable[Tick], underlying: Tick | None, expiry: str | None) -> Chain:
    """The chain of ``expiry`` (default: the nearest streamed one)."""
    ticks = list(options)
    expiries = sorted({str(t["expiry"]) for t in ticks if t.get("expiry")})
    chosen = expiry or (expiries[0] if expiries else None)
    sides: dict[float, dict[str, Tick]] = {}
    for tick in ticks:
        if str(tick.get("expiry")) == chosen:
            sides.setdefault(float(tick["strike"]), {})[tick["instrument_type"]] = tick
    rows = [ChainRow(k, s.get("CE"), s.get("PE")) for k, s in sorted(sides.items())]
    return Chain(chosen, expiries, rows, underlying)


def read_chain(client: redis.Redis | RedisCluster, channels: Channels, expiry: str | None) -> Chain:
    """The chain from the latest-tick hashes in Redis, as of now."""
    options = [orjson.loads(v) for v in client.hvals(channels.latest_options)]
    underlying = [orjson.loads(v) for v in client.hvals(channels.latest_underlying)]
    return build_chain(options, underlying[0] if underlying else None, expiry)


def change(tick: Tick) -> float | None:
    """Last price less the previous close, None when either is unknown."""
    price, before = tick.get("last_price"), tick.get("prev_close")
    return price - before if isinstance(price, int | float) and before else None


def cells(tick: Tick) -> dict[str, Any]:
    """What a chain shows of one option tick (numbers, None when unknown)."""
    return {
        "token": tick.get("instrument_token"),
        "expiry": tick.get("expiry"),
        "strike": tick.get("strike"),
        "type": tick.get("instrument_type"),
        "last": tick.get("last_price"),
        "change": change(tick),
        "oi": tick.get("oi"),
        "iv": tick.get("iv"),
        "delta": tick.get("delta"),
        "timestamp": tick.get("timestamp"),
    }


def underlying_cells(tick: Tick | None) -> dict[str, Any] | None:
    """The chain header's figures of the underlying's latest tick."""
    if tick is None:
        return None
    return {
        "symbol": tick.get("symbol") or tick.get("tradingsymbol"),
        "last": tick.get("last_price"),
        "change": tick.get("change") if tick.get("change") is not None else change(tick),
        "timestamp": tick.get("timestamp"),
    }


def chain_document(chain: Chain) -> dict[str, Any]:
    """The chain as JSON for the browser: rows of call and put cells by strike."""
    return {
        "expiry": chain.expiry,
        "expiries": chain.expiries,
        "underlying": underlying_cells(chain.underlying),
        "rows": [
            {
                "strike": row.strike,
                "call": None if row.call is None else cells(row.call),
                "put": None if row.put is None else cells(row.put),
            }
            for row in chain.rows
        ],
    }
