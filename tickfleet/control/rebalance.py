"""The body of a reload: from active subscriptions to a saved assignment and live streams."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from tickfleet.accounts.config import Account
from tickfleet.assignment.plan import Assignment, Configured, Demand, Placement, assign
from tickfleet.assignment.store import AssignmentStore
from tickfleet.control.expiry import expired_tokens
from tickfleet.control.launcher import StreamLauncher
from tickfleet.control.reload import BodyRefusedError
from tickfleet.instruments.model import Instrument
from tickfleet.instruments.registry import Registry
from tickfleet.market.hours import MarketHours
from tickfleet.runtime.clock import Clock
from tickfleet.subscriptions.events import EventChannel, ended
from tickfleet.subscriptions.store import Subscription, SubscriptionStore

log = logging.getLogger("tickfleet.reload")

UNLISTED = "instrument no longer listed"
EXPIRED = "contract expired"


class RefusedReloadError(BodyRefusedError):
    """The reload would act on the wrong data (an empty registry, another database)."""


class Rebalancer:
    """Recomputes and publishes the assignment; called under the reload lock.

    Before it touches anything it makes sure it reads the fleet's own database: one
    whose registry lists instruments and whose id is the one the saved assignment was
    computed from. Run against a fresh or foreign database, a reload would otherwise
    deactivate every subscription as unlisted or assign nothing, and stop every stream.
    """

    def __init__(
        self,
        subscriptions: SubscriptionStore,
        registry: Registry,
        accounts: Sequence[Account],
        assignments: AssignmentStore,
        launcher: StreamLauncher,
        clock: Clock,
        hours: MarketHours,
        per_connection: int,
        database: Callable[[], str],
        events: EventChannel,
        configured: Configured,
    ) -> None:
        self.subscriptions = subscriptions
        self.registry = registry
        self.accounts = accounts
        self.assignments = assignments
        self.launcher = launcher
        self.clock = clock
        self.hours = hours
        self.per_connection = per_connection
        self.database = database
        self.events = events
        self.configured = configured
        self.switch_database = False  # set by an operator who moves the fleet on purpose

    def __call__(self) -> dict[str, Any]:
        previous = self.assignments.load()
        database = self._check_database(previous)
        now = self.hours.at(self.clock.time())
        active = self.subscriptions.active()
        listed = self.registry.get_many([s.token for s in active])
        dropped = self._drop_unlisted(active, listed, now)
        demands = [
            Demand(s.token, s.mode.value, s.pinned_account)
            for s in active
            if s.token not in dropped
        ]
        plan = assign(demands, self.accounts, previous.placements, self.per_connection)
        rows = [listed[t] for t in plan.placements]
        current = self.assignments.save(
            previous, plan, rows, database, self.clock.time(), self.configured
        )
        self._record_placements(active, dropped, current)
        started = self.launcher.ensure(current.streams())
        return {
            "version": current.version,
            "tokens": len(current.placements),
            "unassigned": len(current.unassigned),
            "deactivated": len(dropped),
            "kept": plan.kept,
            "moved": plan.moved,
            "added": plan.added,
            "removed": plan.removed,
            "streams_started": started,
        }

    def in_sync(self) -> bool:
        """Whether the saved assignment covers exactly the active subscriptions and modes,
        for the configured underlyings and accounts.

        A change whose reload request was lost (Redis briefly down when the API wrote
        it) shows up here, so the periodic backstop can request the missing reload; so
        does a fleet restarted with other accounts or underlyings (say simulated, then
        live): its tokens would stay on accounts that no longer exist.
        """
        current = self.assignments.load()
        if current.configuration != self.configured:
            return False
        active = {s.token: s.mode.value for s in self.subscriptions.active()}
        covered = set(current.placements) | set(current.unassigned)
        return covered == set(active) and all(current.modes.get(t) == m for t, m in active.items())

    def _check_database(self, previous: Assignment) -> str:
        database = self.database()
        if self.registry.count() == 0:
            raise RefusedReloadError(
                "the instrument registry is empty: refusing to deactivate every subscription "
                "(run `tickfleet init-db` or `tickfleet refresh-instruments`)"
            )
        fleet = previous.database
        if fleet is not None and fleet != database and not self.switch_database:
            raise RefusedReloadError(
                f"this database (id {database}) is not the one the fleet's assignment "
                f"v{previous.version} was computed from (id {fleet}); check DATABASE_URL, "
                "or reload with --switch-database to move the fleet to it"
            )
        return database

    def _drop_unlisted(
        self, active: Sequence[Subscription], listed: Mapping[int, Instrument], now: datetime
    ) -> set[int]:
        """Deactivate subscriptions whose instrument is no longer listed or has expired."""
        unknown = [s.token for s in active if s.token not in listed]
        expired = expired_tokens(listed, self.hours, now)
        gone = self.subscriptions.deactivate(unknown, UNLISTED, now)
        ended_ = self.subscriptions.deactivate(expired, EXPIRED, now)
        at = now.timestamp()
        self.events.publish(
            [ended("subscription_removed", t, None, UNLISTED, at) for t in gone]
            + [ended("subscription_removed", t, listed.get(t), EXPIRED, at) for t in ended_]
        )
        dropped = set(gone) | set(ended_)
        if dropped:
            log.info(
                "deactivated %d subscriptions (%d unlisted, %d expired)",
                len(dropped),
                len(unknown),
                len(expired),
            )
        return dropped

    def _record_placements(
        self, active: Sequence[Subscription], dropped: set[int], current: Assignment
    ) -> None:
        changes: dict[int, tuple[str, int] | None] = {}
        for s in active:
            if s.token in dropped:
                continue
            where = current.placements.get(s.token)
            wanted = _pair(where)
            if wanted != ((s.account, s.connection) if s.account is not None else None):
                changes[s.token] = wanted
        self.subscriptions.record_placements(changes)


def _pair(p: Placement | None) -> tuple[str, int] | None:
    return (p.account_id, p.connection) if p is not None else None
