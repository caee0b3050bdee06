"""The fleet's shared breaker state in Redis, touched only through atomic Lua scripts."""

from __future__ import annotations

from typing import Any

import redis
from redis.client import PubSub

from tickfleet.breaker.config import BreakerConfig
from tickfleet.breaker.report import Report, StoreView
from tickfleet.breaker.scripts import RESERVE, SYNC
from tickfleet.breaker.state import CircuitState
from tickfleet.names import Keys


def as_text(raw: Any) -> str:
    """A Redis reply as text; a missing value (None) is the empty string."""
    if raw is None:
        return ""
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def parse_view(raw: list[Any]) -> StoreView:
    state, version, opened_at, changed_at, failures = (as_text(item) for item in raw)
    return StoreView(
        state=CircuitState.OPEN if state == "open" else CircuitState.CLOSED,
        version=int(version),
        opened_at=float(opened_at) if opened_at else None,
        changed_at=float(changed_at),
        failures=int(failures),
    )


def _claim_args(report: Report) -> list[str]:
    claim = report.claim
    if claim is None:
        return ["0", "", "0", ""]
    opened_at = "" if claim.opened_at is None else repr(claim.opened_at)
    return [str(claim.base), claim.state.label, repr(claim.at), opened_at]


class BreakerStore:
    """One breaker's keys, under the fleet's prefix, and the two scripts that change them.

    ``holder`` names this worker in the failure window and in probe reservations; it must
    be unique per breaker instance.
    """

    def __init__(
        self, client: redis.Redis, keys: Keys, name: str, config: BreakerConfig, holder: str
    ) -> None:
        self.client = client
        self.holder = holder
        self.channel = keys.breaker_channel(name)
        self._config = config
        self._state_keys = [keys.breaker_state(name), keys.breaker_failures(name)]
        self._probe_keys = [keys.breaker_state(name), keys.breaker_probes(name)]
        self._sync: Any = client.register_script(SYNC)
        self._reserve: Any = client.register_script(RESERVE)

    def sync(self, report: Report, now: float) -> StoreView:
        """Write one round of outcomes and the pending claim; return the fleet's state."""
        config = self._config
        args = [
            self.channel,
            self.holder,
            repr(now),
            repr(config.window_seconds),
            str(config.failure_threshold),
            *_claim_args(report),
            str(report.successes),
        ]
        for at, sequence in report.failures:
            args += [repr(at), f"{self.holder}:{sequence}"]
        keys = [*self._state_keys, self._probe_keys[1]]
        return parse_view(self._sync(keys=keys, args=args))

    def reserve_probe(self, version: int, now: float) -> bool:
        """Reserve one of the fleet's half-open probes for ``version``; False if none is left."""
        config = self._config
        args = [
            str(version),
            self.holder,
            repr(now),
            repr(config.probe_reservation_ttl),
            str(config.half_open_max_attempts),
        ]
        return bool(self._reserve(keys=self._probe_keys, args=args))

    def pubsub(self) -> PubSub:
        return PubSub(self.client.connection_pool, ignore_subscribe_messages=True)
