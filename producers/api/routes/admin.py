"""Admin actions: reloads (scheduled or immediate), instrument refresh, Kite access tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from producers.api.deps import (
    ApiKey,
    CeleryDep,
    CoordinatorDep,
    RebalancerDep,
    RedisUp,
    ServicesDep,
)
from producers.api.errors import declared
from producers.api.schemas import (
    AccessTokenIn,
    AccessTokenPosted,
    ReloadInfo,
    ReloadRan,
    ReloadRequested,
    TaskQueued,
)
from tickfleet.accounts.access_tokens import Credentials, TokenAlreadyRefusedError, post_token
from tickfleet.accounts.config import find_account
from tickfleet.control.reload import ReloadBusyError
from tickfleet.keyspace.tasks import TASK_REFRESH_INSTRUMENTS

# Every admin action goes through Redis (the reload state, the broker, the token store):
# with Redis gone it answers 503 at once, before anything changed.
router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[ApiKey, RedisUp])


@router.post("/reload", response_model=ReloadRequested | ReloadRan, responses=declared(401, 409))
def reload(
    coordinator: CoordinatorDep,
    rebalancer: RebalancerDep,
    immediate: bool = Query(False, description="run now and wait, skipping the debounce"),
) -> ReloadRequested | ReloadRan:
    if not immediate:
        # The reload is this request's whole point: a failure to request it is the
        # answer (503 when Redis or the broker is unavailable), not a field of a 200.
        request = coordinator.request("admin")
        info = ReloadInfo(
            requested=True, scheduled=request.scheduled, generation=request.generation
        )
        return ReloadRequested(reload=info)
    try:
        outcome = coordinator.run_now(rebalancer)
    except ReloadBusyError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return ReloadRan(
        kind=outcome.kind,
        generation=outcome.generation,
        requests=outcome.requests,
        summary=dict(outcome.summary or {}),
        error=outcome.error,
    )


@router.post(
    "/instrument-refresh",
    response_model=TaskQueued,
    status_code=status.HTTP_202_ACCEPTED,
    responses=declared(401),
)
def instrument_refresh(celery: CeleryDep) -> TaskQueued:
    result = celery.send_task(TASK_REFRESH_INSTRUMENTS)
    return TaskQueued(task_id=result.id, task=TASK_REFRESH_INSTRUMENTS)


@router.post(
    "/accounts/{account_id}/token",
    response_model=AccessTokenPosted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=declared(400, 401, 404, 409, 413),
)
def post_access_token(
    account_id: Annotated[str, Path(min_length=1, max_length=64)],
    body: AccessTokenIn,
    services: ServicesDep,
) -> AccessTokenPosted:
    """The account's streams pick the token up by themselves (no restart), within
    ``TICKFLEET_KITE_SESSION_CHECK_SECONDS``. The token is never echoed or logged."""
    account = find_account(services.settings, account_id)
    if account is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"account {account_id} is not configured")
    api_key = body.api_key or account.api_key
    if api_key is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_ENTITY,
            f"account {account_id} has no api key configured: send api_key with the token",
        )
    now = services.clock.time()
    try:
        post_token(
            services.redis, services.keys, account_id,
            Credentials(api_key, body.access_token, "admin"), now,
        )  # fmt: skip
    except TokenAlreadyRefusedError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return AccessTokenPosted(
        account_id=account_id,
        posted_at=now,
        detail="the account's streams reconnect with it within "
        f"{services.settings.kite_session_check_seconds:g}s",
    )
