"""Naming contracts on the command line: tokens, or ``NIFTY 2026-06-11 24000-24500 CE``.

Operators think in strikes and expiries, Kite in instrument tokens. A selection names an
underlying, an expiry, a strike or strike range and optionally one side; the API's
``GET /instruments`` turns it into tokens, so the command line and the API always agree
on what a name means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

SIDES = ("CE", "PE")


class SelectionError(ValueError):
    """Words that name neither tokens nor a selection."""


@dataclass(frozen=True, slots=True)
class Selection:
    """Every listed option of one underlying and expiry within a strike range."""

    underlying: str
    expiry: date
    strike_min: float
    strike_max: float
    side: str | None = None  # CE, PE, or both

    def filters(self) -> dict[str, object]:
        """The query of ``GET /instruments`` that lists these contracts."""
        return {
            "underlying": self.underlying,
            "expiry": self.expiry.isoformat(),
            "strike_min": self.strike_min,
            "strike_max": self.strike_max,
            "instrument_type": self.side,
            "limit": 10000,
        }


def parse_targets(words: Sequence[str]) -> list[int] | Selection:
    """Tokens (all integers) or one selection; SelectionError says what is wrong."""
    if words and all(w.isdigit() for w in words):
        return [int(w) for w in words]
    if len(words) not in (3, 4):
        raise SelectionError(
            "name tokens, or UNDERLYING EXPIRY STRIKE[-STRIKE] [CE|PE] "
            "(e.g. NIFTY 2026-06-11 24000-24500 CE)"
        )
    side = words[3].upper() if len(words) == 4 else None
    if side is not None and side not in SIDES:
        raise SelectionError(f"side must be CE or PE, not {words[3]!r}")
    low, high = _strikes(words[2])
    return Selection(words[0].upper(), _expiry(words[1]), low, high, side)


def _expiry(word: str) -> date:
    try:
        return date.fromisoformat(word)
    except ValueError:
        raise SelectionError(f"expiry must be YYYY-MM-DD, not {word!r}") from None


def _strikes(word: str) -> tuple[float, float]:
    low, _, high = word.partition("-")
    try:
        bounds = float(low), float(high or low)
    except ValueError:
        raise SelectionError(f"strikes must be STRIKE or LOW-HIGH, not {word!r}") from None
    if bounds[0] > bounds[1]:
        raise SelectionError(f"strike range {word!r} runs backwards")
    return bounds


def tokens_of(instruments: Sequence[dict[str, Any]]) -> list[int]:
    """The tokens of the listed contracts, by strike then side (the order a chain reads)."""
    ordered = sorted(instruments, key=lambda i: (i["strike"], i["instrument_type"]))
    return [int(i["instrument_token"]) for i in ordered]
