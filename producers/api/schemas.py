"""Request and response bodies of the REST API.

The subscription bodies speak both tickfleet's names and the predecessor's
(``requested_mode`` for ``mode``, ``account_id`` for ``pinned_account``), so the
consumers of the service tickfleet replaced keep working unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from tickfleet.market.contracts import ListedInstrument
from tickfleet.subscriptions.store import Mode, Status, Subscription, SubscriptionRequest


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Strict: JSON integers only. ``true`` was once taken as token 1, ``1.0`` and "1"
    # are not tokens either; Kite's tokens are unsigned 32-bit.
    instrument_token: int = Field(gt=0, lt=2**32, strict=True)
    mode: Mode | None = Field(None, description="absent: an active subscription keeps its mode")
    requested_mode: Mode | None = Field(None, description="the predecessor's name for mode")
    pinned_account: str | None = Field(None, min_length=1, max_length=64)
    account_id: str | None = Field(
        None, min_length=1, max_length=64, description="the predecessor's name for pinned_account"
    )

    @field_validator("mode", "requested_mode", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_value_per_name(self) -> SubscriptionIn:
        for ours, theirs in (("mode", "requested_mode"), ("pinned_account", "account_id")):
            a, b = getattr(self, ours), getattr(self, theirs)
            if a is not None and b is not None and a != b:
                raise ValueError(f"{ours} and {theirs} name one setting; they disagree")
        return self

    def request(self) -> SubscriptionRequest:
        """No mode given: an active subscription keeps its mode, a new one streams FULL."""
        mode = self.mode or self.requested_mode
        return SubscriptionRequest(
            self.instrument_token, mode, self.pinned_account or self.account_id
        )


class SubscriptionOut(BaseModel):
    """A subscription: the predecessor's record (``instrument_token``, ``tradingsymbol``,
    ``segment``, ``status``, ``requested_mode``, ``account_id``, times) plus tickfleet's
    names and where it streams from."""

    instrument_token: int
    tradingsymbol: str | None
    segment: str | None
    status: Status
    requested_mode: Mode
    account_id: str | None
    mode: Mode
    pinned_account: str | None
    account: str | None
    connection: int | None
    reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Subscription, row: ListedInstrument | None) -> Self:
        return cls(**record_fields(s, row))


def record_fields(s: Subscription, row: ListedInstrument | None) -> dict[str, Any]:
    """A subscription's record, with its instrument's names when it is listed."""
    return {
        "instrument_token": s.token,
        "tradingsymbol": row.tradingsymbol if row else None,
        "segment": row.segment if row else None,
        "status": s.status,
        "requested_mode": s.mode,
        "account_id": s.pinned_account,
        "mode": s.mode,
        "pinned_account": s.pinned_account,
        "account": s.account,
        "connection": s.connection,
        "reason": s.reason,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


class ReloadInfo(BaseModel):
    """Whether the change requested a reload (``scheduled``: this request scheduled it)."""

    requested: bool
    scheduled: bool = False
    generation: int | None = None
    error: str | None = None


class SubscriptionSaved(SubscriptionOut):
    """The answer to one subscription object: its record, and the reload it requested."""

    reload: ReloadInfo


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


class AccessTokenIn(BaseModel):
    """A fresh Kite access token for one account (Kite issues one a day)."""

    model_config = ConfigDict(extra="forbid")

    access_token: SecretStr = Field(min_length=1, max_length=200)
    api_key: str | None = Field(
        None, min_length=1, max_length=200, description="default: the configured one"
    )


class AccessTokenPosted(BaseModel):
    account_id: str
    source: str = "admin"
    posted_at: float
    detail: str
