"""Request dependencies, as ``Annotated`` aliases the routes declare."""

from __future__ import annotations

import hmac
from typing import Annotated

from celery import Celery
from fastapi import Depends, Header, HTTPException, Request, status

from producers.api.writes import Writes
from tickfleet.control.rebalance import Rebalancer
from tickfleet.control.reload import ReloadCoordinator
from tickfleet.wiring.services import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_coordinator(request: Request) -> ReloadCoordinator:
    coordinator: ReloadCoordinator = request.app.state.coordinator
    return coordinator


async def get_rebalancer(request: Request, services: ServicesDep) -> Rebalancer:
    return services.rebalancer(request.app.state.stream_starter)


async def get_celery(request: Request) -> Celery:
    celery: Celery = request.app.state.celery
    return celery


async def get_writes(request: Request) -> Writes:
    writes: Writes = request.app.state.writes
    return writes


CoordinatorDep = Annotated[ReloadCoordinator, Depends(get_coordinator)]
WritesDep = Annotated[Writes, Depends(get_writes)]


def redis_up(request: Request) -> None:
    """Dependency of the admin routes: Redis first, the check every write makes
    (``Writes.redis_first``), so an outage answers 503 before anything changed."""
    writes: Writes = request.app.state.writes
    writes.redis_first()


RedisUp = Depends(redis_up)


RebalancerDep = Annotated[Rebalancer, Depends(get_rebalancer)]
CeleryDep = Annotated[Celery, Depends(get_celery)]


def _given_key(x_api_key: str | None, authorization: str | None) -> str:
    if x_api_key:
        return x_api_key
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _key_matches(request: Request, x_api_key: str | None, authorization: str | None) -> bool:
    services: Services = request.app.state.services
    expected = services.settings.api_key
    if expected is None:
        return True
    given = _given_key(x_api_key, authorization).encode()
    return hmac.compare_digest(given, expected.get_secret_value().encode())


async def is_authorised(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> bool:
    """Whether the caller may see details and change things (constant-time compare).

    True when no key is configured: an open API, which ``producers.api.security`` keeps
    on loopback. The key arrives as ``X-API-Key``, or as ``Authorization: Bearer`` (what
    Prometheus sends from a scrape configuration).
    """
    return _key_matches(request, x_api_key, authorization)


Authorised = Annotated[bool, Depends(is_authorised)]


async def require_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header()] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> None:
    """Guard for mutating routes and ``/metrics`` when an API key is configured.

    It reads the key itself rather than through ``Authorised`` (or the services through
    ``ServicesDep``): FastAPI solves every sub-dependency of every request in full, cache
    or not, and on ``POST /subscriptions`` the nested ones were a fifth of the event loop's
    time (``bench/reload_burst.py`` under py-spy).
    """
    if not _key_matches(request, x_api_key, authorization):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong X-API-Key")


ApiKey = Depends(require_api_key)
