"""Expired contracts leave the fleet: subscriptions deactivated, streams told to forget them.

Runs from beat every few minutes (the predecessor's mock state grew forever). The
expiry day is judged in the market's timezone: a contract expiring today still trades.
"""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

import redis

from tickfleet import control
from tickfleet.clock import Clock
from tickfleet.instruments import InstrumentRegistry
from tickfleet.names import Keys
from tickfleet.subscriptions import SubscriptionStore

log = logging.getLogger("tickfleet.eviction")


class ExpiryEvictor:
    def __init__(
        self,
        subscriptions: SubscriptionStore,
        registry: InstrumentRegistry,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        market_tz: str,
    ) -> None:
        self._subscriptions = subscriptions
        self._registry = registry
        self._client = client
        self._keys = keys
        self._clock = clock
        self._tz = ZoneInfo(market_tz)

    def run(self) -> list[int]:
        """Deactivate active subscriptions of expired contracts; returns their tokens."""
        now = datetime.fromtimestamp(self._clock.time(), self._tz)
        expired = set(self._registry.expired_tokens(now.date()))
        active = {s.token for s in self._subscriptions.active()}
        tokens = self._subscriptions.deactivate(sorted(expired & active), "contract expired", now)
        if tokens:
            message = control.Evict(tokens=tuple(tokens), reason="expired")
            control.publish(self._client, self._keys.control_channel, message)
            log.info("evicted %d expired subscriptions", len(tokens))
        return tokens
