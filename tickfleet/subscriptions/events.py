"""Subscription lifecycle events on ``<prefix>:events``, in the shape consumers listen for.

The predecessor's consumer backfills history when it hears ``subscription_created``
and notes ``subscription_deleted`` (removed through the API) and
``subscription_removed`` (removed by the fleet: a contract that expired, an instrument
no longer listed). Each event is published after the database change committed, so a
consumer that reacts by reading ``GET /subscriptions`` already sees it. Events are
notifications, as pub/sub is: a Redis that cannot take them costs a warning and a count
(``subscription_events_failed_total``), never the change itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import orjson
import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from tickfleet.market.contracts import ListedInstrument
from tickfleet.metrics.catalog import Metrics
from tickfleet.subscriptions.store import Subscription

log = logging.getLogger("tickfleet.events")

EventType = Literal["subscription_created", "subscription_deleted", "subscription_removed"]


@dataclass(frozen=True, slots=True)
class SubscriptionEvent:
    event_type: EventType
    instrument_token: int
    metadata: Mapping[str, str | None]
    at: float  # epoch seconds
    underlying: str | None = None  # whose events channel it goes to; None: unlisted

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "event_type": self.event_type,
                "instrument_token": self.instrument_token,
                "metadata": dict(self.metadata),
                "timestamp": int(self.at),
            }
        )


def created(sub: Subscription, row: ListedInstrument | None, at: float) -> SubscriptionEvent:
    metadata = {**_names(row), "requested_mode": sub.mode.value, "account_id": sub.pinned_account}
    return SubscriptionEvent("subscription_created", sub.token, metadata, at, _underlying(row))


def ended(
    event_type: EventType, token: int, row: ListedInstrument | None, reason: str, at: float
) -> SubscriptionEvent:
    """A ``subscription_deleted`` (by the API) or ``subscription_removed`` (by the fleet)."""
    metadata = {**_names(row), "reason": reason}
    return SubscriptionEvent(event_type, token, metadata, at, _underlying(row))


def _underlying(row: ListedInstrument | None) -> str | None:
    return row.underlying if row else None


def _names(row: ListedInstrument | None) -> dict[str, str | None]:
    return {
        "tradingsymbol": row.tradingsymbol if row else None,
        "segment": row.segment if row else None,
    }


class EventChannel:
    """Where subscription events go: their underlying's events channel (``channel_of``),
    published in order, never raising."""

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        channel_of: Callable[[str | None], str],
        metrics: Metrics,
    ) -> None:
        self._client = client
        self._channel_of = channel_of
        self._metrics = metrics

    def publish(self, events: Iterable[SubscriptionEvent]) -> int:
        """Publish ``events`` in order in one round trip; returns how many were sent."""
        batch = list(events)
        if not batch:
            return 0
        try:
            self._send(batch)
        except (redis.RedisError, RedisClusterException) as exc:
            log.warning("%d subscription events not published: %s", len(batch), exc)
            self._metrics.inc("subscription_events_failed_total", len(batch))
            return 0
        self._metrics.inc("subscription_events_total", len(batch))
        return len(batch)

    def _send(self, batch: list[SubscriptionEvent]) -> None:
        client = self._client
        if isinstance(client, RedisCluster):  # sharded channels, each on its slot's node
            for event in batch:
                client.spublish(self._channel_of(event.underlying), event.to_json())
            return
        pipe = client.pipeline(transaction=False)
        for event in batch:
            pipe.publish(self._channel_of(event.underlying), event.to_json())
        pipe.execute()
