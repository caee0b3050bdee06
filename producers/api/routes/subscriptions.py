"""Subscriptions: list, create (one or many, all or nothing), deactivate."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, status

from producers.api.deps import ApiKey, CoordinatorDep, ServicesDep
from producers.api.reloads import request_reload
from producers.api.schemas import ReloadInfo, SubscriptionIn, SubscriptionOut, SubscriptionsChanged
from tickfleet.admission import Load, Rejection, admit, capacity_of, over_capacity
from tickfleet.services import Services
from tickfleet.subscriptions import Status, Subscription, SubscriptionRequest

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])

_STATUS_OF = {
    "unknown": status.HTTP_404_NOT_FOUND,
    "expired": status.HTTP_409_CONFLICT,
    "capacity": status.HTTP_409_CONFLICT,
    "invalid": status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def _out(services: Services, subs: list[Subscription]) -> list[SubscriptionOut]:
    listed = services.registry.get_many([s.token for s in subs])
    return [
        SubscriptionOut.of(s, listed[s.token].tradingsymbol if s.token in listed else None)
        for s in subs
    ]


def _reject(rejections: list[Rejection]) -> HTTPException:
    # The most fundamental problem decides the code: malformed, unknown, expired, no room.
    kind = next(
        k
        for k in ("invalid", "unknown", "expired", "capacity")
        if any(r.kind == k for r in rejections)
    )
    detail = [
        {"instrument_token": r.token, "problem": r.kind, "detail": r.detail} for r in rejections
    ]
    return HTTPException(_STATUS_OF[kind], detail=detail)


def _no_room(services: Services, requests: list[SubscriptionRequest]) -> list[Rejection]:
    store = services.subscriptions
    return over_capacity(
        requests,
        Load(store.load()),
        store.active_pins(r.token for r in requests),
        capacity_of(services.accounts, services.settings.max_tokens_per_connection),
    )


@router.get("", response_model=list[SubscriptionOut])
def list_subscriptions(
    services: ServicesDep, status: Annotated[Status | None, Query()] = None
) -> list[SubscriptionOut]:
    return _out(services, services.subscriptions.find(status))


@router.post("", response_model=SubscriptionsChanged, dependencies=[ApiKey])
def create_subscriptions(
    services: ServicesDep,
    coordinator: CoordinatorDep,
    body: Annotated[SubscriptionIn | list[SubscriptionIn], Body()],
) -> SubscriptionsChanged:
    items = body if isinstance(body, list) else [body]
    if not items:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "empty subscription list")
    requests = [SubscriptionRequest(i.instrument_token, i.mode, i.pinned_account) for i in items]
    now = services.hours.at(services.clock.time())
    rejections = admit(requests, services.registry, services.accounts, services.hours, now)
    rejections = rejections or _no_room(services, requests)
    if rejections:
        raise _reject(rejections)
    saved = services.subscriptions.upsert_many(requests, now)
    reload = request_reload(coordinator, f"subscribe {len(saved)} tokens")
    return SubscriptionsChanged(subscriptions=_out(services, saved), reload=reload)


@router.delete("/{token}", response_model=SubscriptionsChanged, dependencies=[ApiKey])
def delete_subscription(
    token: int, services: ServicesDep, coordinator: CoordinatorDep
) -> SubscriptionsChanged:
    existing = services.subscriptions.get(token)
    if existing is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription for token {token}")
    now = services.hours.at(services.clock.time())
    changed = services.subscriptions.deactivate([token], "unsubscribed", now)
    reload = (
        request_reload(coordinator, f"unsubscribe {token}")
        if changed
        else ReloadInfo(requested=False)
    )
    current = services.subscriptions.get(token)
    assert current is not None
    return SubscriptionsChanged(
        subscriptions=_out(services, [current]), changed=bool(changed), reload=reload
    )
