"""``tickfleet chain``: the option chain of one expiry, from the latest-tick hashes.

The hashes hold the latest tick of every token the fleet streams now (a token the fleet
stops streaming leaves them), so the subscribed strikes and their prices are one HGETALL
away, with no database and no subscription to the tick channels. Calls on the left, puts
on the right, the strike between them, as traders read a chain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from rich.table import Table
from rich.text import Text

from tickfleet.names import Channels

Tick = dict[str, Any]
_SIDE = ("last", "chg", "OI", "IV %", "delta")


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


def read_chain(client: redis.Redis, channels: Channels, expiry: str | None) -> Chain:
    """The chain from the latest-tick hashes in Redis, as of now."""
    options = [orjson.loads(v) for v in client.hvals(channels.latest_options)]
    underlying = [orjson.loads(v) for v in client.hvals(channels.latest_underlying)]
    return build_chain(options, underlying[0] if underlying else None, expiry)


def chain_table(chain: Chain) -> Table:
    """The chain as a table: call columns, the strike, put columns mirrored."""
    table = Table(title=_title(chain), caption=_caption(chain))
    for name in _SIDE:
        table.add_column(name, justify="right", style="cyan")
    table.add_column("strike", justify="center", style="bold")
    for name in reversed(_SIDE):
        table.add_column(name, justify="right", style="magenta")
    for row in chain.rows:
        table.add_row(*_cells(row.call), f"{row.strike:g}", *reversed(_cells(row.put)))
    return table


def _title(chain: Chain) -> str:
    u = chain.underlying
    if u is None:
        return f"expiry {chain.expiry or '—'}: no underlying tick"
    change = u.get("change")
    moved = f" ({change:+.2f})" if isinstance(change, int | float) else ""
    return (
        f"{u.get('symbol', '')} {u.get('last_price', 0):.2f}{moved}   expiry {chain.expiry}   "
        f"{u.get('timestamp', '')}"
    )


def _caption(chain: Chain) -> str | None:
    others = [e for e in chain.expiries if e != chain.expiry]
    if not chain.rows:
        return "no streamed strikes for this expiry"
    return f"other expiries streamed: {', '.join(others)}" if others else None


def _cells(tick: Tick | None) -> list[str | Text]:
    if tick is None:
        return ["—"] * len(_SIDE)
    price, before = tick.get("last_price"), tick.get("prev_close")
    change = price - before if isinstance(price, int | float) and before else None
    return [
        _number(price, ".2f"),
        _change(change),
        _number(tick.get("oi"), ",.0f"),
        _number(tick["iv"] * 100 if tick.get("iv") is not None else None, ".1f"),
        _number(tick.get("delta"), "+.2f"),
    ]


def _number(value: object, spec: str) -> str:
    return "—" if not isinstance(value, int | float) else format(value, spec)


def _change(value: float | None) -> str | Text:
    if value is None:
        return "—"
    return Text(f"{value:+.2f}", style="green" if value >= 0 else "red")
