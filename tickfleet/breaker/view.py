"""The fleet's breaker as seen from outside any worker, for /health.

The store holds only OPEN or CLOSED; HALF_OPEN is derived here the same way every
worker derives it, from ``opened_at`` plus the recovery timeout. When the store cannot
be read, the view falls back to what the streams last reported about their own local
breakers: the worst of them, marked ``source: local``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from tickfleet.breaker.shared import as_text
from tickfleet.breaker.state import BreakerConfig, BreakerSnapshot, CircuitState
from tickfleet.keyspace.keys import Keys


def read_shared(
    client: redis.Redis, keys: Keys, name: str, config: BreakerConfig, now: float
) -> BreakerSnapshot:
    """The shared state; raises redis errors when the store is unreachable."""
    pipe = client.pipeline(transaction=False)
    pipe.hmget(keys.breaker_state(name), ["state", "opened_at"])
    pipe.zcount(keys.breaker_failures(name), now - config.window_seconds, "+inf")
    (state, opened), failures = pipe.execute()
    opened_at = float(as_text(opened)) if as_text(opened) else None
    current = CircuitState.OPEN if as_text(state) == "open" else CircuitState.CLOSED
    recovered = opened_at is not None and now >= opened_at + config.recovery_timeout
    if current is CircuitState.OPEN and recovered:
        current = CircuitState.HALF_OPEN
    return BreakerSnapshot(
        state=current.label, failure_count=int(failures), opened_at=opened_at, source="shared"
    )


SEVERITY = {"closed": 0, "half_open": 1, "open": 2}
"""How bad a breaker state is, for picking the worst of several."""


def worst_local(reports: Iterable[Mapping[str, Any]]) -> BreakerSnapshot | None:
    """The most severe breaker any stream reported (open > half-open > closed)."""
    seen = [r for r in reports if r.get("breaker_state") in SEVERITY]
    if not seen:
        return None
    worst = max(seen, key=lambda r: (SEVERITY[r["breaker_state"]], r.get("breaker_failures") or 0))
    opened = worst.get("breaker_opened_at")
    return BreakerSnapshot(
        state=worst["breaker_state"],
        failure_count=int(worst.get("breaker_failures") or 0),
        opened_at=float(opened) if opened else None,
        source="local",
    )
