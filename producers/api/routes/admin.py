"""Admin actions: reloads (scheduled or immediate) and instrument refresh."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status

from producers.api.deps import ApiKey, CeleryDep, CoordinatorDep, RebalancerDep
from producers.api.reloads import request_reload
from producers.api.schemas import ReloadRan, ReloadRequested, TaskQueued
from tickfleet import names
from tickfleet.reload import ReloadBusyError

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[ApiKey])


@router.post("/reload", response_model=ReloadRequested | ReloadRan)
def reload(
    coordinator: CoordinatorDep,
    rebalancer: RebalancerDep,
    immediate: bool = Query(False, description="run now and wait, skipping the debounce"),
) -> ReloadRequested | ReloadRan:
    if not immediate:
        return ReloadRequested(reload=request_reload(coordinator, "admin"))
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


@router.post("/instrument-refresh", response_model=TaskQueued, status_code=status.HTTP_202_ACCEPTED)
def instrument_refresh(celery: CeleryDep) -> TaskQueued:
    result = celery.send_task(names.TASK_REFRESH_INSTRUMENTS)
    return TaskQueued(task_id=result.id, task=names.TASK_REFRESH_INSTRUMENTS)
