"""The current assignment, versioned in Redis and announced on the control channel."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
import redis

from tickfleet.assignment import channel as control
from tickfleet.assignment.catalog import save_catalog
from tickfleet.assignment.plan import Assignment, Configured, Plan
from tickfleet.instruments.model import Instrument
from tickfleet.keyspace.keys import Keys

log = logging.getLogger("tickfleet.assignment")

# Replace the document only if nobody saved a newer one since we read it.
_SAVE = """
local current = redis.call('GET', KEYS[1])
local version = 0
if current then version = cjson.decode(current)['version'] end
if version ~= tonumber(ARGV[1]) then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
return version + 1
"""


class AssignmentConflictError(RuntimeError):
    """Another writer saved an assignment in between; the reload lock should prevent it."""


_NIFTY_ONLY = Configured()


class AssignmentStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._save: Any = client.register_script(_SAVE)

    def load(self) -> Assignment:
        return self.find() or Assignment()

    def find(self) -> Assignment | None:
        """The saved assignment, or None when there is none (a new or emptied Redis)."""
        raw = self._client.get(self._keys.assignment)
        return Assignment.from_dict(orjson.loads(raw)) if raw else None

    def save(
        self,
        previous: Assignment,
        plan: Plan,
        rows: Iterable[Instrument],
        database: str,
        now: float,
        configuration: Configured = _NIFTY_ONLY,
    ) -> Assignment:
        """Persist the plan as the next version and announce it; unchanged plans are no-ops.

        ``rows`` (the registry rows of the placed tokens) go to the catalog first, every
        time, so that streams find them before any assignment names their tokens.
        ``configuration`` is (underlyings, configured account ids) the plan was made for.
        """
        save_catalog(self._client, self._keys.catalog, rows)
        if (
            plan.placements == previous.placements
            and plan.modes == previous.modes
            and plan.unassigned == previous.unassigned
            and previous.database == database
            and previous.configuration == configuration
        ):
            return previous
        new = Assignment(
            previous.version + 1, plan.placements, plan.modes, plan.unassigned, database, now,
            *configuration,
        )  # fmt: skip
        result = self._save(
            keys=[self._keys.assignment], args=[previous.version, orjson.dumps(new.to_dict())]
        )
        if int(result) < 0:
            raise AssignmentConflictError("assignment changed while it was being computed")
        control.publish(
            self._client, self._keys.control_channel, control.AssignmentChanged(version=new.version)
        )
        log.info(
            "assignment version %d: %d tokens on %d accounts, %d unassigned",
            new.version,
            len(new.placements),
            len(new.accounts()),
            len(new.unassigned),
        )
        return new
