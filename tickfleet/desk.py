"""What subscribing and unsubscribing do, whoever asks: admit, write, then tell consumers.

A request is admitted whole or not at all (``admission``), written in one transaction,
and only then announced on the events channel, so a consumer that reacts to
``subscription_created`` by reading the subscriptions already finds it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from tickfleet.accounts import Account
from tickfleet.admission import Load, Rejection, admit, capacity_of, over_capacity
from tickfleet.events import EventChannel, created, ended
from tickfleet.instruments import Instrument, InstrumentRegistry
from tickfleet.market.hours import MarketHours
from tickfleet.subscriptions import Subscription, SubscriptionRequest, SubscriptionStore

UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class Subscribed:
    """The subscriptions as written, which of them were not active before, their rows."""

    saved: list[Subscription]
    new: frozenset[int]
    rows: Mapping[int, Instrument]


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    subscription: Subscription
    changed: bool
    row: Instrument | None


class _Looked:
    """The registry, remembering what it was asked: admission and the answer need the same
    rows, and one lookup per request is one session less on the hot path."""

    def __init__(self, registry: InstrumentRegistry) -> None:
        self._registry = registry
        self._seen: dict[int, Instrument] = {}

    def get_many(self, tokens: Collection[int]) -> Mapping[int, Instrument]:
        missing = [t for t in tokens if t not in self._seen]
        if missing:
            self._seen.update(self._registry.get_many(missing))
        return {t: self._seen[t] for t in tokens if t in self._seen}

    def count(self) -> int:
        return self._registry.count()


class Desk:
    def __init__(
        self,
        subscriptions: SubscriptionStore,
        registry: InstrumentRegistry,
        accounts: Sequence[Account],
        hours: MarketHours,
        per_connection: int,
        events: EventChannel,
    ) -> None:
        self._subscriptions = subscriptions
        self._registry = registry
        self._accounts = accounts
        self._hours = hours
        self._per_connection = per_connection
        self._events = events

    def subscribe(
        self, requests: Sequence[SubscriptionRequest], now: datetime
    ) -> Subscribed | list[Rejection]:
        """Admit and write ``requests``, or every reason they cannot be (nothing written).

        The room check's reads and the write are one transaction: a failure leaves nothing
        half-written, and on SQLite, whose writers of one process queue on one lock, two
        requests of a process cannot both pass the check on the same free slots. Events
        go out only after the commit.
        """
        registry = _Looked(self._registry)
        rejections = admit(requests, registry, self._accounts, self._hours, now)
        if rejections:
            return rejections
        capacity = capacity_of(self._accounts, self._per_connection)
        with self._subscriptions.writing() as write:
            active_before = write.active_pins(r.token for r in requests)
            rejections = over_capacity(requests, Load(write.load()), active_before, capacity)
            if rejections:
                return rejections
            saved = write.upsert(requests, now)
        rows = registry.get_many([s.token for s in saved])
        new = frozenset(s.token for s in saved if s.token not in active_before)
        at = now.timestamp()
        self._events.publish(created(s, rows.get(s.token), at) for s in saved if s.token in new)
        return Subscribed(saved, new, rows)

    def unsubscribe(self, token: int, now: datetime) -> Unsubscribed | None:
        """Deactivate ``token``'s subscription in one transaction; None when there is none."""
        with self._subscriptions.writing() as write:
            if write.get(token) is None:
                return None
            changed = bool(write.deactivate([token], UNSUBSCRIBED, now))
            current = write.get(token)
        assert current is not None  # rows are deactivated, never deleted
        row = self._registry.get(token)
        if changed:
            event = ended("subscription_deleted", token, row, UNSUBSCRIBED, now.timestamp())
            self._events.publish([event])
        return Unsubscribed(current, changed, row)
