"""Request dependencies, as ``Annotated`` aliases the routes declare."""

from __future__ import annotations

import hmac
from typing import Annotated

from celery import Celery
from fastapi import Depends, Header, HTTPException, Request, status

from tickfleet.rebalance import Rebalancer
from tickfleet.reload import ReloadCoordinator
from tickfleet.services import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_coordinator(request: Request, services: ServicesDep) -> ReloadCoordinator:
    return services.coordinator(request.app.state.reload_scheduler)


def get_rebalancer(request: Request, services: ServicesDep) -> Rebalancer:
    return services.rebalancer(request.app.state.stream_starter)


def get_celery(request: Request) -> Celery:
    celery: Celery = request.app.state.celery
    return celery


CoordinatorDep = Annotated[ReloadCoordinator, Depends(get_coordinator)]
RebalancerDep = Annotated[Rebalancer, Depends(get_rebalancer)]
CeleryDep = Annotated[Celery, Depends(get_celery)]


def require_api_key(
    services: ServicesDep, x_api_key: Annotated[str | None, Header()] = None
) -> None:
    """Guard for mutating routes when an API key is configured (constant-time compare)."""
    expected = services.settings.api_key
    if expected is None:
        return
    given = (x_api_key or "").encode()
    if not hmac.compare_digest(given, expected.get_secret_value().encode()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key")


ApiKey = Depends(require_api_key)
