"""The live option chain: ``/chain`` (the page), ``/chain/data`` (the chain now) and
``/chain/events`` (server-sent events from the process's one tick subscription).

Read policy (README, "Security"): the chain is market data and the fleet's verdict, no
internals, so like ``GET /subscriptions`` it needs no key; the status it shows is the
public summary of ``/health`` (``producers.api.public.public_status``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse
from sse_starlette import EventSourceResponse

from producers.api.deps import CoordinatorDep, ServicesDep
from producers.api.public import public_status
from tickfleet.chain.fanout import Frame, TickFanout
from tickfleet.chain.option_chain import cells, chain_document, read_chain, underlying_cells
from tickfleet.health.document import health_document

router = APIRouter(tags=["chain"])
PING_SECONDS = 15  # a comment line this often keeps proxies from closing a quiet stream


async def get_fanout(request: Request) -> TickFanout:
    fanout: TickFanout = request.app.state.fanout
    return fanout


FanoutDep = Annotated[TickFanout, Depends(get_fanout)]
Expiry = Annotated[date | None, Query(description="YYYY-MM-DD; default the nearest streamed")]


@cache
def _page() -> str:
    return (files("producers.api") / "static" / "chain.html").read_text(encoding="utf-8")


@router.get("/chain", response_class=HTMLResponse)
async def chain_page() -> HTMLResponse:
    """The chain as a live page (plain HTML and a little JS)."""
    return HTMLResponse(_page())


@router.get("/chain/data")
def chain_data(
    services: ServicesDep, fanout: FanoutDep, coordinator: CoordinatorDep, expiry: Expiry = None
) -> dict[str, Any]:
    """One expiry's streamed strikes from the latest ticks, and the fleet's status."""
    chain = read_chain(services.redis, services.channels, _iso(expiry))
    known = fanout.status
    if known is None:
        known = public_status(health_document(services.health_sources(), coordinator))
    return {**chain_document(chain), "status": known}


@router.get("/chain/events", response_class=EventSourceResponse)
async def chain_events(fanout: FanoutDep, expiry: Expiry = None) -> EventSourceResponse:
    """``ticks`` (the latest of each strike that ticked, every frame), ``status`` (when the
    fleet's was read again) and ``resync`` (reload ``/chain/data``: rows changed or frames
    were missed)."""
    limit = fanout.max_watchers
    if fanout.watchers >= limit:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, f"{limit} live chain pages already watch"
        )
    return EventSourceResponse(_events(fanout, _iso(expiry)), ping=PING_SECONDS)


def _iso(expiry: date | None) -> str | None:
    return expiry.isoformat() if expiry else None


async def _events(fanout: TickFanout, expiry: str | None) -> AsyncIterator[dict[str, str]]:
    shown: dict[str, Any] | None = None
    async for frame in fanout.watch():
        if frame.resync:
            yield _event("resync", {"live": frame.live})
        ticks = _ticks(frame, expiry)
        if ticks is not None:
            yield ticks
        if frame.status is not None and frame.status is not shown:
            shown = frame.status
            yield _event("status", {**frame.status, "live": frame.live})


def _ticks(frame: Frame, expiry: str | None) -> dict[str, str] | None:
    """The frame's ``ticks`` event for pages of ``expiry``, its data serialised once a
    frame, not once a page (fifty pages of one expiry would make the same JSON fifty times)."""
    key = ("ticks", expiry)
    if key not in frame.shared:
        frame.shared[key] = _ticks_data(frame, expiry)
    data: str | None = frame.shared[key]
    return None if data is None else {"event": "ticks", "data": data}


def _ticks_data(frame: Frame, expiry: str | None) -> str | None:
    options = [cells(t) for t in frame.options if expiry is None or t.get("expiry") == expiry]
    if not options and frame.underlying is None:
        return None
    ticks = {"options": options, "underlying": underlying_cells(frame.underlying)}
    return orjson.dumps(ticks).decode()


def _event(name: str, data: object) -> dict[str, str]:
    return {"event": name, "data": orjson.dumps(data).decode()}
