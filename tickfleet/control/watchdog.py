"""The watchdog's pass: every stream that should run has a lease or a start on its way.

Runs from beat every few seconds. Besides restarting streams whose worker died, it
requests a reload when the assignment no longer answers for the subscriptions: it
vanished (the fleet's Redis restarted empty) while subscriptions are active, the fleet
now runs with other underlyings or accounts than it was computed for, or a
subscription changed after the last reload started and after the assignment was saved.
The second covers a change the API committed but could not request a reload for (Redis
went away between the two): the database is the truth, and the fleet catches up with it
by itself within a watchdog period once Redis answers.
"""

from __future__ import annotations

import logging
from typing import Protocol

from tickfleet.assignment.plan import Assignment, Configured
from tickfleet.assignment.store import AssignmentStore
from tickfleet.control.launcher import StreamLauncher
from tickfleet.subscriptions.store import SubscriptionStore

log = logging.getLogger("tickfleet.watchdog")


class Requester(Protocol):
    def request(self, reason: str) -> object: ...

    def last_started(self) -> float | None: ...


def watch(
    assignments: AssignmentStore,
    subscriptions: SubscriptionStore,
    launcher: StreamLauncher,
    reloads: Requester,
    configured: Configured,
) -> list[str]:
    """Start every stream that should run and has no lease; returns the ones started."""
    assignment = assignments.find()
    if assignment is None and subscriptions.load():
        log.warning("no assignment in Redis while subscriptions are active: requesting a reload")
        reloads.request("assignment missing")
    elif assignment is not None and assignment.configuration != configured:
        log.warning("the configured underlyings or accounts changed: requesting a reload")
        reloads.request("configuration changed since the last reload")
    elif assignment is not None and _changed_since(assignment, subscriptions, reloads):
        log.warning("subscriptions changed after the last reload: requesting one")
        reloads.request("subscriptions changed since the last reload")
    return launcher.ensure((assignment or Assignment(underlyings=configured.underlyings)).streams())


def _changed_since(
    assignment: Assignment, subscriptions: SubscriptionStore, reloads: Requester
) -> bool:
    """A subscription changed after both the assignment's save and the last reload's start."""
    changed = subscriptions.last_change()
    if changed is None:
        return False
    seen = max(assignment.saved_at or 0.0, reloads.last_started() or 0.0)
    return changed.timestamp() > seen
