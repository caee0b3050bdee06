"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tickfleet.subscriptions import Mode, Status, Subscription


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instrument_token: int = Field(gt=0, lt=2**32)
    mode: Mode = Mode.FULL
    pinned_account: str | None = Field(None, min_length=1, max_length=64)


class SubscriptionOut(BaseModel):
    instrument_token: int
    tradingsymbol: str | None
    mode: Mode
    pinned_account: str | None
    status: Status
    account: str | None
    connection: int | None
    reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Subscription, tradingsymbol: str | None) -> SubscriptionOut:
        return cls(
            instrument_token=s.token,
            tradingsymbol=tradingsymbol,
            mode=s.mode,
            pinned_account=s.pinned_account,
            status=s.status,
            account=s.account,
            connection=s.connection,
            reason=s.reason,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class ReloadInfo(BaseModel):
    """Whether the change requested a reload (``scheduled``: this request scheduled it)."""

    requested: bool
    scheduled: bool = False
    generation: int | None = None
    error: str | None = None


class SubscriptionsChanged(BaseModel):
    subscriptions: list[SubscriptionOut]
    changed: bool = True
    reload: ReloadInfo


class ReloadRequested(BaseModel):
    reload: ReloadInfo


class ReloadRan(BaseModel):
    kind: str
    generation: int | None
    requests: int
    summary: dict[str, Any] | None
    error: str | None


class TaskQueued(BaseModel):
    task_id: str
    task: str
