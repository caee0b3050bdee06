"""The predecessor's consumer, as a contract: it parses both channels the way its code did.

Written from the facts of the service tickfleet replaces and its consumer (the F&O
aggregator and the monitor of `backend/app` in raghurammutya/ML), never from tickfleet's
own payload builders, so a change that breaks those consumers fails here:

- an option tick needs ``type`` in CE/PE (others are dropped), ``float(strike)``,
  ``date.fromisoformat(expiry)``, ``int(ts)`` in epoch seconds, and ``symbol``, the
  underlying's name, equal to the underlying tick's ``symbol`` (that is how it links an
  option to its index); the monitor keys options by ``token``;
- an underlying tick's ``close`` is the *current* price (the consumer builds its own
  bars from it), with ``int(ts)`` and ``volume``.

Each parse raises ``ContractBrokenError`` with the reason, where the consumer would have
dropped the tick or crashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


class ContractBrokenError(AssertionError):
    """A tick the predecessor's consumer would have dropped or choked on."""


@dataclass(frozen=True)
class ParsedOption:
    token: int
    symbol: str
    kind: str
    strike: float
    expiry: date
    ts: int
    price: float
    greeks: tuple[float, float, float, float, float]
    volume: float
    oi: float


@dataclass(frozen=True)
class ParsedUnderlying:
    symbol: str
    close: float
    ts: int
    volume: float


def _epoch_seconds(payload: dict[str, Any]) -> int:
    raw = payload.get("ts")
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise ContractBrokenError(f"ts must be an integer of epoch seconds, got {raw!r}")
    if not 1_000_000_000 < raw < 10_000_000_000:
        raise ContractBrokenError(f"ts {raw} is not epoch seconds")
    return int(raw)


def _number(payload: dict[str, Any], key: str) -> float:
    try:
        return float(payload.get(key) or 0.0)
    except (TypeError, ValueError) as exc:
        raise ContractBrokenError(f"{key} is not a number: {payload.get(key)!r}") from exc


def parse_option(payload: dict[str, Any]) -> ParsedOption:
    kind = str(payload.get("type") or "").upper()
    if kind not in ("CE", "PE"):
        raise ContractBrokenError(f"type must be CE or PE, got {payload.get('type')!r}")
    try:
        strike = float(payload["strike"])
        expiry = date.fromisoformat(str(payload["expiry"]))
        token = int(payload["token"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ContractBrokenError(f"strike, expiry or token unreadable: {exc!r}") from exc
    symbol = payload.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ContractBrokenError(f"symbol must name the underlying, got {symbol!r}")
    greeks = tuple(_number(payload, k) for k in ("iv", "delta", "gamma", "theta", "vega"))
    return ParsedOption(
        token=token,
        symbol=symbol,
        kind=kind,
        strike=strike,
        expiry=expiry,
        ts=_epoch_seconds(payload),
        price=_number(payload, "price"),
        greeks=(greeks[0], greeks[1], greeks[2], greeks[3], greeks[4]),
        volume=_number(payload, "volume"),
        oi=_number(payload, "oi"),
    )


def parse_underlying(payload: dict[str, Any]) -> ParsedUnderlying:
    raw = payload.get("close") or payload.get("price") or payload.get("last_price")
    try:
        close = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ContractBrokenError(f"close (the current price) unreadable: {raw!r}") from exc
    symbol = payload.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ContractBrokenError(f"symbol must name the underlying, got {symbol!r}")
    return ParsedUnderlying(symbol, close, _epoch_seconds(payload), _number(payload, "volume"))


# A tick waits in Redis and in the test's listener before it is heard; on a machine
# running the whole suite that took up to 2.4 s. A wrong clock is off by hours (the
# market's offset, 19800 s), a day, or a factor of 1000 (milliseconds).
TS_HEARD_WITHIN_SECONDS = 5.0


def assert_current_ts(tick: dict[str, Any], heard_at: float) -> None:
    """``ts`` is the tick's own time in whole epoch seconds (its ``timestamp`` cut to the
    second) and current: not after it was heard, and at most a few seconds before."""
    stamp = datetime.fromisoformat(tick["timestamp"]).timestamp()
    assert tick["ts"] == int(stamp), tick
    assert heard_at - TS_HEARD_WITHIN_SECONDS <= tick["ts"] <= heard_at, (heard_at, tick)
