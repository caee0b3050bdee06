"""The vocabulary every breaker speaks: its states, where its state comes from, transitions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Literal, TypedDict


class CircuitState(IntEnum):
    """Values are the ``redis_circuit_state`` gauge values the predecessor service exported."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        """The lower-case name ``/health`` shows."""
        return self.name.lower()


Source = Literal["shared", "local"]
"""``shared``: in step with the fleet's state store; ``local``: deciding alone (store unreachable
or not configured)."""

Listener = Callable[[CircuitState, CircuitState, Source], None]
"""Called once per transition with the old state, the new state and the breaker's source.

Listeners run on whichever thread caused the transition (a caller's or the sync thread), so
they must be quick and must not block."""


class BreakerSnapshot(TypedDict):
    """What ``/health`` shows of a breaker."""

    state: str
    failure_count: int
    opened_at: float | None
    source: Source


@dataclass(frozen=True, slots=True)
class Transition:
    """One state change, queued under the breaker's lock and announced outside it."""

    old: CircuitState
    new: CircuitState
    source: Source
    version: int
