"""What subscribing and unsubscribing do, whoever asks: admit, write, then tell consumers.

A request is admitted whole or not at all (``admission``), written in one transaction,
and only then announced on the events channel, so a consumer that reacts to
``subscription_created`` by reading the subscriptions already finds it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from tickfleet.accounts.config import Account
from tickfleet.instruments import Instrument, InstrumentRegistry
from tickfleet.market.hours import MarketHours
from tickfleet.subscriptions.admission import Load, Rejection, admit, capacity_of, over_capacity
from tickfleet.subscriptions.events import EventChannel, created, ended
from tickfleet.subscriptions.store import (
    Subscription,
    SubscriptionRequest,
    SubscriptionStore,
    SubscriptionWrite,
)

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


class _Room:
    """Active subscriptions and load inside one write transaction, kept current as the
    requests of a batch are written one after another."""

    def __init__(
        self,
        write: SubscriptionWrite,
        batch: Sequence[Sequence[SubscriptionRequest]],
        capacity: Mapping[str, int],
    ) -> None:
        self._active = dict(write.active_pins(r.token for rs in batch for r in rs))
        self._load: Counter[str | None] = Counter(write.load())
        self._capacity = capacity

    def take(
        self, write: SubscriptionWrite, requests: Sequence[SubscriptionRequest], now: datetime
    ) -> Subscribed | list[Rejection]:
        before = {r.token: self._active[r.token] for r in requests if r.token in self._active}
        refused = over_capacity(requests, Load(dict(self._load)), before, self._capacity)
        if refused:
            return refused
        saved = write.upsert(requests, now)
        self._load.subtract(before.values())
        self._load.update(s.pinned_account for s in saved)
        self._active.update((s.token, s.pinned_account) for s in saved)
        new = frozenset(s.token for s in saved if s.token not in before)
        return Subscribed(saved, new, {})


def _with_rows(
    outcome: Subscribed | list[Rejection], registry: _Looked
) -> Subscribed | list[Rejection]:
    if isinstance(outcome, list):
        return outcome
    return Subscribed(
        outcome.saved, outcome.new, registry.get_many([s.token for s in outcome.saved])
    )


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
        """Admit and write ``requests``, or every reason they cannot be (nothing written)."""
        [outcome] = self.subscribe_each([requests], now)
        return outcome

    def subscribe_each(
        self, batch: Sequence[Sequence[SubscriptionRequest]], now: datetime
    ) -> list[Subscribed | list[Rejection]]:
        """Several requests, each admitted whole or not at all, in order, in one transaction.

        The room check's reads and the writes are one transaction: a failure leaves nothing
        half-written, and on SQLite, whose writers of one process queue on one lock, two
        requests cannot both pass the check on the same free slots. A request sees the
        ones before it in ``batch`` as if they had been written before it. One registry
        lookup, one commit and one round of events serve the whole batch: concurrent API
        requests share them (``producers.api.writes``). Events go out only after the commit.
        """
        registry = _Looked(self._registry)
        registry.get_many({r.token for requests in batch for r in requests})
        refused = [admit(rs, registry, self._accounts, self._hours, now) for rs in batch]
        with self._subscriptions.writing() as write:
            room = _Room(write, batch, capacity_of(self._accounts, self._per_connection))
            outcomes = [
                r or room.take(write, rs, now) for rs, r in zip(batch, refused, strict=True)
            ]
        outcomes = [_with_rows(o, registry) for o in outcomes]
        done = [o for o in outcomes if isinstance(o, Subscribed)]
        at = now.timestamp()
        self._events.publish(
            created(s, o.rows.get(s.token), at) for o in done for s in o.saved if s.token in o.new
        )
        return outcomes

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
