"""Health and Prometheus metrics of the whole fleet."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from producers.api.deps import CoordinatorDep, ServicesDep
from tickfleet.health import (
    CoverageCollector,
    KiteCollector,
    current_coverage,
    current_streams,
    health_document,
    kite_sessions,
)
from tickfleet.metrics import FleetCollector

router = APIRouter(tags=["health"])


@router.get("/health")
def health(services: ServicesDep, coordinator: CoordinatorDep) -> JSONResponse:
    doc = health_document(services, coordinator)
    return JSONResponse(doc, status_code=503 if doc["status"] == "down" else 200)


@router.get("/metrics")
def metrics(services: ServicesDep) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(services.redis, services.settings.key_prefix))
    registry.register(CoverageCollector(lambda: current_coverage(services)))
    registry.register(
        KiteCollector(lambda: kite_sessions(services), lambda: current_streams(services))
    )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
