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
    requests of a batch are admitted one after another."""

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
        self, requests: Sequence[SubscriptionRequest]
    ) -> dict[int, str | None] | list[Rejection]:
        """Room for ``requests`` after those taken before them: the pins of the ones
        active until now (which the write replaces), or why there is none."""
        wanted = {r.token: r for r in requests}  # the last request for a token wins
        before = {t: self._active[t] for t in wanted if t in self._active}
        refused = over_capacity(requests, Load(dict(self._load)), before, self._capacity)
        if refused:
            return refused
        self._load.subtract(before.values())
        self._load.update(r.pinned_account for r in wanted.values())
        self._active.update((t, r.pinned_account) for t, r in wanted.items())
        return before


def _upsert_each(
    write: SubscriptionWrite, batch: Sequence[Sequence[SubscriptionRequest]], now: datetime
) -> list[list[Subscription]]:
    """Each request's subscriptions as written, in one upsert per round, not per request.

    A round holds a token at most once: a token that several requests of the batch name
    is written once per request, in their order, each answer seeing its own write, as if
    the requests had been written one by one. One statement per request cost more than
    SQLite's work on it (``bench/reload_burst.py``: 2,400 executes, 45 % of a batch).
    """
    rounds: list[dict[int, SubscriptionRequest]] = []
    seen: Counter[int] = Counter()
    placed: list[list[tuple[int, int]]] = []
    for requests in batch:
        mine = []
        for token, request in {r.token: r for r in requests}.items():
            if seen[token] == len(rounds):
                rounds.append({})
            rounds[seen[token]][token] = request
            mine.append((seen[token], token))
            seen[token] += 1
        placed.append(mine)
    written = [{s.token: s for s in write.upsert(list(r.values()), now)} for r in rounds]
    return [sorted((written[i][t] for i, t in mine), key=lambda s: s.token) for mine in placed]


def _outcome(before: Mapping[int, str | None], saved: list[Subscription]) -> Subscribed:
    return Subscribed(saved, frozenset(s.token for s in saved if s.token not in before), {})


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
            taken = [r or room.take(rs) for rs, r in zip(batch, refused, strict=True)]
            admitted = [rs for rs, t in zip(batch, taken, strict=True) if isinstance(t, dict)]
            saved = iter(_upsert_each(write, admitted, now))
        outcomes = [
            _with_rows(_outcome(t, next(saved)) if isinstance(t, dict) else t, registry)
            for t in taken
        ]
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
