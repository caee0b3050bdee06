"""The watchdog's pass: every stream that should run has a lease or a start on its way.

Runs from beat every few seconds. Besides restarting streams whose worker died, it
notices an assignment that vanished (the fleet's Redis restarted empty) while
subscriptions are active, and requests the reload that rebuilds it at once, instead of
leaving the fleet to the half-minute backstop.
"""

from __future__ import annotations

import logging
from typing import Protocol

from tickfleet.assignment import Assignment
from tickfleet.assignment_store import AssignmentStore
from tickfleet.launcher import StreamLauncher
from tickfleet.subscriptions import SubscriptionStore

log = logging.getLogger("tickfleet.watchdog")


class Requester(Protocol):
    def request(self, reason: str) -> object: ...


def watch(
    assignments: AssignmentStore,
    subscriptions: SubscriptionStore,
    launcher: StreamLauncher,
    reloads: Requester,
) -> list[str]:
    """Start every stream that should run and has no lease; returns the ones started."""
    assignment = assignments.find()
    if assignment is None and subscriptions.load():
        log.warning("no assignment in Redis while subscriptions are active: requesting a reload")
        reloads.request("assignment missing")
    return launcher.ensure((assignment or Assignment()).streams())
