"""Whether subscription requests may be admitted, before anything is written.

A request is all-or-nothing: every token must be listed in the instrument registry and
not expired, every pinned account must be configured, and the fleet must have room for
it. All problems are reported at once, so a client fixes its request in one round.

Room is checked here because a subscription accepted as ``active`` that can never be
placed would be a promise the fleet does not keep. Two requests racing past this check
together can still overflow by a few tokens; the reload then leaves those unassigned and
``/health`` names them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from tickfleet.accounts.config import Account
from tickfleet.instruments.registry import Registry
from tickfleet.market.hours import MarketHours
from tickfleet.subscriptions.store import SubscriptionRequest

RejectionKind = Literal["unknown", "expired", "invalid", "capacity"]


@dataclass(frozen=True, slots=True)
class Rejection:
    kind: RejectionKind
    token: int
    detail: str


@dataclass(frozen=True, slots=True)
class Load:
    """Active subscriptions per pinned account (``None``: not pinned)."""

    by_pin: Mapping[str | None, int]

    @property
    def total(self) -> int:
        return sum(self.by_pin.values())


def capacity_of(accounts: Sequence[Account], per_connection: int) -> dict[str, int]:
    """Tokens each account can stream: its connections times the per-connection limit."""
    return {a.account_id: a.max_connections * per_connection for a in accounts}


def admit(
    requests: Sequence[SubscriptionRequest],
    registry: Registry,
    accounts: Sequence[Account],
    hours: MarketHours,
    now: datetime,
) -> list[Rejection]:
    """Every reason the requests cannot be admitted; empty means admit them all."""
    rejections = _invalid(requests, {a.account_id for a in accounts})
    listed = registry.get_many([r.token for r in requests])
    for r in requests:
        instrument = listed.get(r.token)
        if instrument is None:
            rejections.append(Rejection("unknown", r.token, "instrument token is not listed"))
        elif instrument.expiry is not None and hours.is_expired(instrument.expiry, now):
            instant = hours.expiry_instant(instrument.expiry).isoformat()
            rejections.append(Rejection("expired", r.token, f"contract expired at {instant}"))
    return rejections


def over_capacity(
    requests: Sequence[SubscriptionRequest],
    load: Load,
    already_active: Mapping[int, str | None],
    capacity: Mapping[str, int],
) -> list[Rejection]:
    """Rejections when the fleet (or a pinned account) has no room for the requests.

    ``load`` counts every active subscription; ``already_active`` maps the requested
    tokens that are active now to their current pin, so re-posting a subscription
    never counts twice.
    """
    after = Counter(load.by_pin)
    for pin in already_active.values():
        after[pin] -= 1
    for r in requests:
        after[r.pinned_account] += 1
    problems = [
        f"account {account} can stream {room} tokens, {after[account]} would be pinned to it"
        for account, room in sorted(capacity.items())
        if after[account] > room
    ]
    total_room = sum(capacity.values())
    if sum(after.values()) > total_room:
        problems.append(
            f"the fleet can stream {total_room} tokens, {load.total} are active and this "
            f"request would make {sum(after.values())}"
        )
    detail = "; ".join(problems)
    return [Rejection("capacity", r.token, detail) for r in requests] if problems else []


def _invalid(requests: Sequence[SubscriptionRequest], accounts: set[str]) -> list[Rejection]:
    out = [
        Rejection("invalid", t, "token appears more than once in the request")
        for t, n in Counter(r.token for r in requests).items()
        if n > 1
    ]
    out += [
        Rejection("invalid", r.token, f"pinned account {r.pinned_account!r} is not configured")
        for r in requests
        if r.pinned_account is not None and r.pinned_account not in accounts
    ]
    return out
