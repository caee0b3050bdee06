"""``tickfleet chain``: the option chain of one expiry in the terminal
(``tickfleet.chain.option_chain`` reads it). Calls on the left, puts on the right, the
strike between them, as traders read a chain.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from tickfleet.chain.option_chain import Chain, Tick, change

_SIDE = ("last", "chg", "OI", "IV %", "delta")


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
    return [
        _number(tick.get("last_price"), ".2f"),
        _change(change(tick)),
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
