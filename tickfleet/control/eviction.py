"""Expired contracts leave the fleet: subscriptions deactivated, streams told to forget them.

Runs from beat every few minutes and just after the close (the predecessor's mock state
grew forever). A contract expires at the close of its expiry day (``control.expiry``, the
rule a reload applies too); the streams already stop pricing it at that instant, this
makes the subscriptions say so, and tells consumers with a ``subscription_removed`` event.
"""

from __future__ import annotations

import logging

import redis

from tickfleet.assignment import channel as control
from tickfleet.control.expiry import expired_tokens
from tickfleet.instruments import InstrumentRegistry
from tickfleet.keyspace.keys import Keys
from tickfleet.market.hours import MarketHours
from tickfleet.runtime.clock import Clock
from tickfleet.subscriptions.events import EventChannel, ended
from tickfleet.subscriptions.store import SubscriptionStore

log = logging.getLogger("tickfleet.eviction")

REASON = "contract expired"


class ExpiryEvictor:
    def __init__(
        self,
        subscriptions: SubscriptionStore,
        registry: InstrumentRegistry,
        client: redis.Redis,
        keys: Keys,
        clock: Clock,
        hours: MarketHours,
        events: EventChannel,
    ) -> None:
        self._subscriptions = subscriptions
        self._registry = registry
        self._client = client
        self._keys = keys
        self._clock = clock
        self._hours = hours
        self._events = events

    def run(self) -> list[int]:
        """Deactivate active subscriptions of expired contracts; returns their tokens."""
        now = self._hours.at(self._clock.time())
        rows = self._registry.get_many([s.token for s in self._subscriptions.active()])
        expired = expired_tokens(rows, self._hours, now)
        tokens = self._subscriptions.deactivate(expired, REASON, now)
        if tokens:
            message = control.Evict(tokens=tuple(tokens), reason="expired")
            control.publish(self._client, self._keys.control_channel, message)
            at = now.timestamp()
            self._events.publish(
                ended("subscription_removed", t, rows.get(t), REASON, at) for t in tokens
            )
            log.info("evicted %d expired subscriptions", len(tokens))
        return tokens
