"""Which active subscriptions are streaming, and why each of the others is not.

One truth for "streaming", shared by ``/health`` and ``/metrics``. An active token
streams when its contract is listed and not expired, the saved assignment places it on
an account, that account's stream holds its lease and ticks, runs the assignment version
that placed it, and holds the token (it is not over the mock cap). An index token
streams when the underlying stream does. Every other active token is named with the
first of these that fails.

Some reasons are expected for a while: a reload follows a subscribe within seconds, a
stream applies a new assignment within a second, the eviction task deactivates expired
contracts within its period. Those count as problems only once they outlast their grace.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tickfleet.assignment.plan import Assignment
from tickfleet.keyspace.streams import account_stream, underlying_stream
from tickfleet.market.contracts import ListedInstrument
from tickfleet.market.hours import MarketHours
from tickfleet.subscriptions.store import Subscription

UNLISTED = "unlisted"
EXPIRED = "expired"
UNASSIGNED = "unassigned"
PENDING = "pending"
NO_STREAM = "no_stream"
IDLE = "idle"
REASONS = (UNLISTED, EXPIRED, UNASSIGNED, PENDING, NO_STREAM, IDLE)
NEVER = float("inf")  # the grace of a reason that is never a problem


@dataclass(frozen=True, slots=True)
class Grace:
    """How long each transient reason is expected to last, in seconds."""

    pending: float
    expired: float


@dataclass(frozen=True, slots=True)
class NotStreaming:
    token: int
    tradingsymbol: str | None
    reason: str
    detail: str
    problem: bool
    underlying: str | None = None  # None: not listed


@dataclass(frozen=True, slots=True)
class Coverage:
    active: int
    not_streaming: tuple[NotStreaming, ...]
    underlyings: Mapping[str, int] = field(default_factory=dict)  # active per underlying

    @property
    def streaming(self) -> int:
        return self.active - len(self.not_streaming)

    def by_reason(self) -> dict[str, int]:
        return dict(Counter(n.reason for n in self.not_streaming))

    def by_underlying(self) -> dict[str, dict[str, int]]:
        """Active and streaming subscriptions of each underlying (listed ones only)."""
        missing = Counter(n.underlying for n in self.not_streaming)
        return {
            name: {"active": count, "streaming": count - missing[name]}
            for name, count in sorted(self.underlyings.items())
        }

    def problems(self) -> list[str]:
        """One line per reason that is a problem now, with its count and a few tokens."""
        bad = [n for n in self.not_streaming if n.problem]
        lines = []
        for reason in sorted({n.reason for n in bad}):
            tokens = [n.token for n in bad if n.reason == reason]
            shown = ", ".join(str(t) for t in tokens[:5]) + (", …" if len(tokens) > 5 else "")
            lines.append(f"{len(tokens)} subscribed tokens not streaming ({reason}): {shown}")
        return lines

    def to_dict(self, limit: int = 500) -> dict[str, Any]:
        return {
            "active": self.active,
            "streaming": self.streaming,
            "not_streaming": len(self.not_streaming),
            "by_reason": self.by_reason(),
            "by_underlying": self.by_underlying(),
            "tokens": [
                {
                    "instrument_token": n.token,
                    "tradingsymbol": n.tradingsymbol,
                    "reason": n.reason,
                    "detail": n.detail,
                    "problem": n.problem,
                }
                for n in self.not_streaming[:limit]
            ],
            "truncated": len(self.not_streaming) > limit,
        }


@dataclass(frozen=True, slots=True)
class _Fleet:
    """What the verdicts are judged against (one health request's reads)."""

    listed: Mapping[int, ListedInstrument]
    assignment: Assignment | None
    streams: Mapping[str, Mapping[str, Any]]
    excluded: Mapping[str, Mapping[int, str]]
    hours: MarketHours
    now: datetime
    grace: Grace


def coverage(
    active: Sequence[Subscription],
    listed: Mapping[int, ListedInstrument],
    assignment: Assignment | None,
    streams: Mapping[str, Mapping[str, Any]],
    excluded: Mapping[str, Mapping[int, str]],
    hours: MarketHours,
    now: datetime,
    grace: Grace,
) -> Coverage:
    """The verdict on every active subscription (see the module docstring)."""
    fleet = _Fleet(listed, assignment, streams, excluded, hours, now, grace)
    verdicts = (_verdict(s, fleet) for s in active)
    per_underlying = Counter(row.underlying for s in active if (row := listed.get(s.token)))
    return Coverage(len(active), tuple(v for v in verdicts if v is not None), dict(per_underlying))


def _verdict(sub: Subscription, fleet: _Fleet) -> NotStreaming | None:
    instrument = fleet.listed.get(sub.token)
    symbol = instrument.tradingsymbol if instrument is not None else None
    found = _contract(sub, instrument, fleet) or _placement(sub, instrument, fleet)
    if found is None:
        return None
    reason, detail, since, grace = found
    age = fleet.now.timestamp() - since if since is not None else None
    problem = grace == 0 or age is None or age > grace
    underlying = instrument.underlying if instrument is not None else None
    return NotStreaming(sub.token, symbol, reason, detail, problem, underlying)


_Found = tuple[str, str, float | None, float]  # reason, detail, since (epoch), grace seconds


def _contract(
    sub: Subscription, instrument: ListedInstrument | None, fleet: _Fleet
) -> _Found | None:
    if instrument is None:
        since = sub.updated_at.timestamp()
        return UNLISTED, "not in the instrument registry", since, fleet.grace.pending
    if instrument.expiry is not None and fleet.hours.is_expired(instrument.expiry, fleet.now):
        at = fleet.hours.expiry_instant(instrument.expiry)
        return EXPIRED, f"expired at {at.isoformat()}", at.timestamp(), fleet.grace.expired
    return None


def _placement(
    sub: Subscription, instrument: ListedInstrument | None, fleet: _Fleet
) -> _Found | None:
    if instrument is not None and instrument.is_index:
        return _stream_state(fleet, underlying_stream(instrument.underlying), None)
    assignment = fleet.assignment
    if assignment is None:
        return PENDING, "no assignment saved (Redis emptied?)", 0.0, fleet.grace.pending
    if sub.token in assignment.unassigned:
        return UNASSIGNED, assignment.unassigned[sub.token], None, 0.0
    placement = assignment.placements.get(sub.token)
    if placement is None:
        since = sub.updated_at.timestamp()
        return PENDING, "not in the assignment yet (reload due)", since, fleet.grace.pending
    stream = account_stream(placement.account_id)
    state = _stream_state(fleet, stream, assignment)
    if state is not None:
        return state
    why = fleet.excluded.get(stream, {}).get(sub.token)
    return (why, f"{stream} does not stream it", None, 0.0) if why is not None else None


def _stream_state(fleet: _Fleet, stream: str, assignment: Assignment | None) -> _Found | None:
    status = fleet.streams.get(stream)
    if status is None or status.get("lease_holder") is None:
        return NO_STREAM, f"{stream}: no stream holds the lease", None, 0.0
    if status.get("problem"):
        return NO_STREAM, f"{stream}: {status['problem']}", None, 0.0
    if status.get("mode") == "idle":
        # Simulation switched off outside market hours: nothing should stream.
        return IDLE, f"{stream} is idle: the market is closed", fleet.now.timestamp(), NEVER
    applied = status.get("assignment_version")
    current = (assignment.version, assignment.saved_at) if assignment is not None else None
    if current is not None and (applied, status.get("assignment_saved_at")) != current:
        detail = f"{stream} has not applied the fleet's assignment v{current[0]} yet"
        return PENDING, detail, assignment.saved_at if assignment else None, fleet.grace.pending
    return None
