"""Health and Prometheus metrics of the whole fleet.

Read policy (README, "Security"): with an API key configured, ``/health`` shows callers
without it a public summary (``producers.api.public``) and the full document only to
callers with it; ``/metrics`` needs the key. Without a key the API is open, on loopback
only, and both show everything.
"""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from producers.api.deps import ApiKey, Authorised, CoordinatorDep, ServicesDep
from producers.api.public import public_health
from tickfleet.health.collectors import CoverageCollector, KiteCollector, StreamCollector
from tickfleet.health.document import (
    current_coverage,
    current_streams,
    health_document,
    kite_sessions,
)
from tickfleet.metrics.fleet import FleetCollector

router = APIRouter(tags=["health"])


@router.get("/health")
def health(
    services: ServicesDep, coordinator: CoordinatorDep, authorised: Authorised
) -> JSONResponse:
    doc = health_document(services.health_sources(), coordinator)
    body = doc if authorised else public_health(doc)
    return JSONResponse(body, status_code=503 if doc["status"] == "down" else 200)


@router.get("/metrics", dependencies=[ApiKey])
def metrics(services: ServicesDep) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(services.redis, services.settings.key_prefix))
    sources = services.health_sources()
    registry.register(CoverageCollector(lambda: current_coverage(sources)))
    streams = cache(lambda: current_streams(sources))  # one read for both collectors
    registry.register(KiteCollector(lambda: kite_sessions(sources), streams))
    registry.register(StreamCollector(streams))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
