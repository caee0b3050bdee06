"""Whether subscription requests may be admitted, before anything is written.

A request is all-or-nothing: every token must be listed in the instrument registry and
not expired, and every pinned account must be configured. All problems are reported
at once, so a client fixes its request in one round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from tickfleet.accounts import Account
from tickfleet.rebalance import Registry
from tickfleet.subscriptions import SubscriptionRequest

RejectionKind = Literal["unknown", "expired", "invalid"]


@dataclass(frozen=True, slots=True)
class Rejection:
    kind: RejectionKind
    token: int
    detail: str


def admit(
    requests: Sequence[SubscriptionRequest],
    registry: Registry,
    accounts: Sequence[Account],
    today: date,
) -> list[Rejection]:
    """Every reason the requests cannot be admitted; empty means admit them all."""
    rejections = _invalid(requests, {a.account_id for a in accounts})
    listed = registry.get_many([r.token for r in requests])
    for r in requests:
        instrument = listed.get(r.token)
        if instrument is None:
            rejections.append(Rejection("unknown", r.token, "instrument token is not listed"))
        elif instrument.expiry is not None and instrument.expiry < today:
            rejections.append(
                Rejection(
                    "expired", r.token, f"contract expired on {instrument.expiry.isoformat()}"
                )
            )
    return rejections


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
