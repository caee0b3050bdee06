"""What a worker tells the fleet's state store and what the store answers."""

from __future__ import annotations

from dataclasses import dataclass

from tickfleet.breaker.state import CircuitState


@dataclass(frozen=True, slots=True)
class Claim:
    """A transition this worker made on its own that the store has not confirmed yet.

    ``base`` is the store version the worker had seen when it decided: the store applies the
    claim only if nothing happened since, except that an open claim newer than the store's
    last change also wins over a closed store (a trip made while the store was unreachable).
    """

    base: int
    state: CircuitState
    at: float
    opened_at: float | None


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one sync round writes: the pending claim and the outcomes since the last."""

    claim: Claim | None
    failures: tuple[tuple[float, int], ...]
    successes: int


@dataclass(frozen=True, slots=True)
class StoreView:
    """The fleet's breaker as the store holds it; ``state`` is only ever OPEN or CLOSED.

    The store never records HALF_OPEN: every worker derives it from ``opened_at`` and the
    recovery timeout, so no write is needed (and none can race) when recovery is due.
    """

    state: CircuitState
    version: int
    opened_at: float | None
    changed_at: float
    failures: int


def claim_wins(claim: Claim, view: StoreView) -> bool:
    """True when an open claim made after the store's last change must reopen a closed store."""
    return (
        claim.state is CircuitState.OPEN
        and view.state is CircuitState.CLOSED
        and claim.at > view.changed_at
    )
