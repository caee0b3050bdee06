"""The instrument registry, filtered."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, HTTPException, Query, status

from producers.api.deps import ServicesDep
from producers.api.errors import declared
from tickfleet.instruments import Instrument

router = APIRouter(prefix="/instruments", tags=["instruments"])


@router.get("", response_model=list[Instrument], responses=declared())
def list_instruments(
    services: ServicesDep,
    underlying: str | None = Query(None, max_length=40),
    expiry: date | None = None,
    instrument_type: str | None = Query(None, max_length=8),
    strike_min: float | None = Query(None, ge=0, allow_inf_nan=False),
    strike_max: float | None = Query(None, ge=0, allow_inf_nan=False),
    include_expired: bool = Query(False, description="also list contracts already expired"),
    limit: int = Query(1000, ge=1, le=10000),
    offset: int = Query(0, ge=0, le=2**31),  # beyond SQL's 64-bit integers: 422, not 500
) -> list[Instrument]:
    if strike_min is not None and strike_max is not None and strike_min > strike_max:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "strike_min exceeds strike_max")
    hours = services.hours
    expired_until = (
        None if include_expired else hours.last_expired_day(hours.at(services.clock.time()))
    )
    return services.registry.query(
        underlying=underlying,
        expiry=expiry,
        instrument_type=instrument_type.upper() if instrument_type else None,
        strike_min=strike_min,
        strike_max=strike_max,
        expired_until=expired_until,
        limit=limit,
        offset=offset,
    )
