"""Circuit breakers for publishing to Redis: one shared by the whole fleet, one local.

``SharedBreaker`` agrees with every other worker through a Redis state store while its
per-call check stays in memory; ``LocalBreaker`` obeys the same rules alone. Both satisfy
``Breaker``.
"""

from tickfleet.breaker.config import BreakerConfig
from tickfleet.breaker.core import STATE_GAUGE
from tickfleet.breaker.local import LocalBreaker
from tickfleet.breaker.protocol import Breaker
from tickfleet.breaker.shared import SharedBreaker
from tickfleet.breaker.state import BreakerSnapshot, CircuitState, Listener, Source

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
]
