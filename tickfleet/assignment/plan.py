"""Assignment of instrument tokens to accounts and their WebSocket connections.

A pure function of (demands, accounts, previous assignment), so it is easy to reason
about and to test. Priorities, in order: pinned tokens go to their pinned account;
every token keeps the placement it already had when that is still allowed (a move
means an unsubscribe and a subscribe on two live sockets, so churn is minimised);
new tokens go to the account with the most free capacity, on its least-loaded
connection. A connection never carries more than ``per_connection`` tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tickfleet.accounts.config import Account
from tickfleet.keyspace.streams import account_stream, underlying_stream


class Configured(NamedTuple):
    """What an assignment is computed for besides the subscriptions: the configured
    underlyings and account ids. A change of either makes the saved one out of date."""

    underlyings: tuple[str, ...] = ("NIFTY",)
    accounts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Demand:
    """One token the fleet must stream."""

    token: int
    mode: str = "FULL"
    pinned_account: str | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    account_id: str
    connection: int


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where every token streams from; ``version`` increases with every saved change.

    ``database`` is the id of the database the assignment was computed from (a reload
    on another database is refused); ``saved_at`` the clock time it was saved.
    ``underlyings`` and ``configured`` (the account ids) are the configuration it was
    computed for: when either changes, the assignment is out of date.
    """

    version: int = 0
    placements: Mapping[int, Placement] = field(default_factory=dict)
    modes: Mapping[int, str] = field(default_factory=dict)
    unassigned: Mapping[int, str] = field(default_factory=dict)
    database: str | None = None
    saved_at: float | None = None
    underlyings: tuple[str, ...] = ("NIFTY",)
    configured: tuple[str, ...] = ()

    @property
    def configuration(self) -> Configured:
        return Configured(self.underlyings, self.configured)

    def accounts(self) -> list[str]:
        return sorted({p.account_id for p in self.placements.values()})

    def same_run(self, other: Assignment) -> bool:
        """Whether ``other`` is this very saved assignment (versions restart in a new Redis)."""
        return (self.version, self.saved_at) == (other.version, other.saved_at)

    def streams(self) -> list[str]:
        """Every stream that must run: one per account with tokens, one per underlying."""
        accounts = [account_stream(a) for a in self.accounts()]
        return accounts + [underlying_stream(u) for u in self.underlyings]

    def tokens_for(self, account_id: str) -> dict[int, str]:
        """Token → mode for one account (what its stream must subscribe)."""
        return {
            t: self.modes.get(t, "FULL")
            for t, p in self.placements.items()
            if p.account_id == account_id
        }

    def connections_for(self, account_id: str) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for token, p in sorted(self.placements.items()):
            if p.account_id == account_id:
                out.setdefault(p.connection, []).append(token)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "placements": {
                str(t): [p.account_id, p.connection] for t, p in self.placements.items()
            },
            "modes": {str(t): m for t, m in self.modes.items()},
            "unassigned": {str(t): r for t, r in self.unassigned.items()},
            "database": self.database,
            "saved_at": self.saved_at,
            "underlyings": list(self.underlyings),
            "configured": list(self.configured),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assignment:
        return cls(
            version=int(data["version"]),
            placements={int(t): Placement(a, int(c)) for t, (a, c) in data["placements"].items()},
            modes={int(t): str(m) for t, m in data.get("modes", {}).items()},
            unassigned={int(t): str(r) for t, r in data.get("unassigned", {}).items()},
            database=data.get("database"),
            saved_at=data.get("saved_at"),
            underlyings=tuple(data.get("underlyings", ("NIFTY",))),
            configured=tuple(data.get("configured", ())),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    """The outcome of one assignment: the new placements plus what it changed."""

    placements: dict[int, Placement]
    modes: dict[int, str]
    unassigned: dict[int, str]
    kept: int
    moved: int
    added: int
    removed: int


class _Capacity:
    """Free slots per (account, connection) while an assignment is being built."""

    def __init__(self, accounts: Sequence[Account], per_connection: int) -> None:
        self.per_connection = per_connection
        self.load: dict[str, list[int]] = {a.account_id: [0] * a.max_connections for a in accounts}

    def fits(self, account_id: str, connection: int) -> bool:
        slots = self.load.get(account_id)
        return (
            slots is not None
            and connection < len(slots)
            and slots[connection] < self.per_connection
        )

    def take(self, account_id: str, connection: int) -> Placement:
        self.load[account_id][connection] += 1
        return Placement(account_id, connection)

    def best_connection(self, account_id: str) -> int | None:
        slots = self.load[account_id]
        connection = min(range(len(slots)), key=lambda c: (slots[c], c))
        return connection if slots[connection] < self.per_connection else None

    def free(self, account_id: str) -> int:
        return len(self.load[account_id]) * self.per_connection - sum(self.load[account_id])

    def emptiest_account(self) -> str | None:
        candidates = [a for a in self.load if self.free(a) > 0]
        return min(candidates, key=lambda a: (-self.free(a), a)) if candidates else None


def _keep(d: Demand, previous: Mapping[int, Placement], cap: _Capacity) -> Placement | None:
    before = previous.get(d.token)
    if before is None or (d.pinned_account and before.account_id != d.pinned_account):
        return None
    return cap.take(before.account_id, before.connection) if cap.fits(*_pair(before)) else None


def _pair(p: Placement) -> tuple[str, int]:
    return p.account_id, p.connection


def _place_new(d: Demand, cap: _Capacity) -> Placement | str:
    account = d.pinned_account or cap.emptiest_account()
    if account is None:
        return "no free capacity on any account"
    if account not in cap.load:
        return f"pinned account {account} is not configured"
    connection = cap.best_connection(account)
    if connection is None:
        return f"account {account} is full"
    return cap.take(account, connection)


def assign(
    demands: Iterable[Demand],
    accounts: Sequence[Account],
    previous: Mapping[int, Placement],
    per_connection: int,
) -> Plan:
    """Place every demanded token; tokens that cannot be placed are listed with a reason."""
    ordered = sorted(demands, key=lambda d: d.token)
    cap = _Capacity(accounts, per_connection)
    placements: dict[int, Placement] = {}
    unassigned: dict[int, str] = {}
    # Pinned tokens are settled completely first, so a pin is never crowded out by
    # unpinned tokens that merely happened to be on that account before.
    for group in (
        [d for d in ordered if d.pinned_account],
        [d for d in ordered if not d.pinned_account],
    ):
        _place_group(group, previous, cap, placements, unassigned)
    return _plan(ordered, placements, unassigned, previous)


def _place_group(
    group: Sequence[Demand],
    previous: Mapping[int, Placement],
    cap: _Capacity,
    placements: dict[int, Placement],
    unassigned: dict[int, str],
) -> None:
    pending: list[Demand] = []
    for d in group:
        kept = _keep(d, previous, cap)
        if kept is None:
            pending.append(d)
        else:
            placements[d.token] = kept
    for d in pending:
        placed = _place_new(d, cap)
        if isinstance(placed, Placement):
            placements[d.token] = placed
        else:
            unassigned[d.token] = placed


def _plan(
    demands: Sequence[Demand],
    placements: dict[int, Placement],
    unassigned: dict[int, str],
    previous: Mapping[int, Placement],
) -> Plan:
    wanted = {d.token for d in demands}
    kept = sum(1 for t, p in placements.items() if previous.get(t) == p)
    moved = sum(1 for t, p in placements.items() if t in previous and previous[t] != p)
    return Plan(
        placements=placements,
        modes={d.token: d.mode for d in demands},
        unassigned=unassigned,
        kept=kept,
        moved=moved,
        added=sum(1 for t in placements if t not in previous),
        removed=sum(1 for t in previous if t not in wanted),
    )
