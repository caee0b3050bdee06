"""Circuit breakers for publishing to Redis: one shared by the whole fleet, one local.

``SharedBreaker`` agrees with every other worker through a Redis state store while its
per-call check stays in memory; ``LocalBreaker`` obeys the same rules alone. Both satisfy
``Breaker``. Modules: ``state`` (the vocabulary), ``machine`` (the rules), ``local``,
``shared`` (store, scripts and the coroutines that keep in step), ``view`` (for /health).
"""

from tickfleet.breaker.local import STATE_GAUGE, LocalBreaker
from tickfleet.breaker.shared import SharedBreaker
from tickfleet.breaker.state import (
    Breaker,
    BreakerConfig,
    BreakerSnapshot,
    CircuitState,
    Listener,
    Source,
    Transition,
)

__all__ = [
    "STATE_GAUGE",
    "Breaker",
    "BreakerConfig",
    "BreakerSnapshot",
    "CircuitState",
    "Listener",
    "LocalBreaker",
    "SharedBreaker",
    "Source",
    "Transition",
]
