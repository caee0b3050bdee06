"""Subscriptions: list, create (one or many, all or nothing), deactivate.

Both tickfleet's and the predecessor's contracts: one object answers with its record
(201 when it started a subscription, 200 when it updated an active one), a list with
every record and the reload it requested.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, Request, Response, status

from producers.api.deps import (
    ApiKey,
    CoordinatorDep,
    ServicesDep,
    WritesDep,
)
from producers.api.errors import declared
from producers.api.reloads import request_reload
from producers.api.schemas import (
    ReloadInfo,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionSaved,
    SubscriptionsChanged,
    record_fields,
)
from producers.api.writes import Subscribes
from tickfleet.control.reload import ReloadCoordinator
from tickfleet.instruments import Instrument
from tickfleet.subscriptions.admission import Rejection
from tickfleet.subscriptions.store import Status, Subscription
from tickfleet.wiring.services import Services

router = APIRouter(prefix="/subscriptions", tags=["subscriptions"])

_STATUS_OF = {
    "unknown": status.HTTP_404_NOT_FOUND,
    "expired": status.HTTP_409_CONFLICT,
    "capacity": status.HTTP_409_CONFLICT,
    "invalid": status.HTTP_422_UNPROCESSABLE_CONTENT,
}


def _record(s: Subscription, row: Instrument | None) -> SubscriptionOut:
    return SubscriptionOut.of(s, row)


def _answer(code: int, answer: SubscriptionSaved | SubscriptionsChanged) -> Response:
    """The answer as FastAPI would serialise the route's ``response_model`` (the model's
    own JSON), without its second validation of a model just built here."""
    return Response(answer.model_dump_json(), code, media_type="application/json")


def _out(services: Services, subs: list[Subscription]) -> list[SubscriptionOut]:
    listed = services.registry.get_many([s.token for s in subs])
    return [_record(s, listed.get(s.token)) for s in subs]


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


@router.get("", response_model=list[SubscriptionOut], responses=declared())
def list_subscriptions(
    services: ServicesDep,
    status: Annotated[Status | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
) -> list[SubscriptionOut]:
    return _out(services, services.subscriptions.find(status, limit=limit, offset=offset))


@router.post(
    "",
    response_model=SubscriptionSaved | SubscriptionsChanged,
    status_code=status.HTTP_201_CREATED,
    dependencies=[ApiKey],
    responses={
        **declared(400, 401, 404, 409, 413),
        200: {
            "description": "an active subscription updated, or a list saved",
            "model": SubscriptionSaved | SubscriptionsChanged,
        },
    },
)
async def create_subscriptions(
    request: Request,
    body: Annotated[SubscriptionIn | list[SubscriptionIn], Body()],
) -> Response:
    return await subscribe(request, body)


async def subscribe(request: Request, body: SubscriptionIn | list[SubscriptionIn]) -> Response:
    """The route's work once its checks passed: write in the API's batches, then answer
    (also ``producers.api.fast_subscribe``'s, for plain requests)."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "empty subscription list")
    subscribes: Subscribes = request.app.state.subscribes  # not a dependency: see deps.py
    done, reload = await subscribes.submit([i.request() for i in items])
    if isinstance(done, list):
        raise _reject(done)
    if isinstance(body, list):
        records = [_record(s, done.rows.get(s.token)) for s in done.saved]
        changed = SubscriptionsChanged(subscriptions=records, reload=reload)
        return _answer(status.HTTP_200_OK, changed)
    [saved] = done.saved
    # 201 when it started a subscription, 200 when it updated an active one
    code = status.HTTP_201_CREATED if saved.token in done.new else status.HTTP_200_OK
    row = done.rows.get(saved.token)
    return _answer(code, SubscriptionSaved(**record_fields(saved, row), reload=reload))


@router.delete(
    "/{token}",
    response_model=SubscriptionsChanged,
    dependencies=[ApiKey],
    responses=declared(401, 404),
)
async def delete_subscription(
    token: Annotated[int, Path(gt=0, lt=2**32)],
    services: ServicesDep,
    coordinator: CoordinatorDep,
    writes: WritesDep,
) -> SubscriptionsChanged:
    return await writes.run(partial(_unsubscribe, services, coordinator, token))


def _unsubscribe(
    services: Services, coordinator: ReloadCoordinator, token: int
) -> SubscriptionsChanged:
    done = services.desk().unsubscribe(token, services.hours.at(services.clock.time()))
    if done is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no subscription for token {token}")
    reload = (
        request_reload(coordinator, f"unsubscribe {token}")
        if done.changed
        else ReloadInfo(requested=False)
    )
    return SubscriptionsChanged(
        subscriptions=[_record(done.subscription, done.row)], changed=done.changed, reload=reload
    )
