"""The live option chain of each configured underlying: ``/chain`` (the page),
``/chain/underlyings`` (what its selector lists), ``/chain/data`` (the chain now) and
``/chain/events`` (server-sent events from the process's subscription to that underlying).

Read policy (README, "Security"): the chain is market data and the fleet's verdict, no
internals, so like ``GET /subscriptions`` it needs no key; the status it shows is the
public summary of ``/health`` (``producers.api.public.public_status``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from sse_starlette import EventSourceResponse

from producers.api.deps import CoordinatorDep, ServicesDep
from producers.api.public import public_status
from tickfleet.chain.fanout import Frame, Seat, TickFanout
from tickfleet.chain.option_chain import cells, chain_document, read_chain, underlying_cells
from tickfleet.config.underlyings import UnknownUnderlyingError
from tickfleet.health.document import health_document
from tickfleet.ticks.channels import Channels

router = APIRouter(tags=["chain"])
PING_SECONDS = 15  # a comment line this often keeps proxies from closing a quiet stream
RETRY_AFTER_SECONDS = 10  # a refused page tries again after this (a place may free by then)


async def get_fanout(request: Request) -> TickFanout:
    fanout: TickFanout = request.app.state.fanout
    return fanout


FanoutDep = Annotated[TickFanout, Depends(get_fanout)]
Expiry = Annotated[date | None, Query(description="YYYY-MM-DD; default the nearest streamed")]
Underlying = Annotated[
    str | None, Query(description="one of TICKFLEET_UNDERLYINGS; default the first")
]


def chosen_channels(services: ServicesDep, underlying: Underlying = None) -> Channels:
    """The channels of the underlying a request names (the first configured when it names
    none); another name is 422 naming the configured ones, before anything is read or a
    seat is taken. (A plain function: FastAPI runs it in a thread, as the first call asks
    the publish Redis whether it is a cluster.)"""
    try:
        return services.channels(underlying)
    except UnknownUnderlyingError as exc:
        problem = {"type": "value_error", "loc": ("query", "underlying"), "msg": str(exc)}
        raise RequestValidationError([{**problem, "input": underlying}]) from None


ChannelsDep = Annotated[Channels, Depends(chosen_channels)]


@cache
def _page() -> str:
    return (files("producers.api") / "static" / "chain.html").read_text(encoding="utf-8")


@router.get("/chain", response_class=HTMLResponse, dependencies=[Depends(chosen_channels)])
async def chain_page() -> HTMLResponse:
    """The chain as a live page (plain HTML and a little JS); it reads ``underlying`` and
    ``expiry`` from its own address, so an unknown underlying is refused here first."""
    return HTMLResponse(_page())


@router.get("/chain/underlyings")
def chain_underlyings(services: ServicesDep) -> list[dict[str, Any]]:
    """The configured underlyings in order (the first is every chain route's default),
    each with the exchange its options trade on, for the page's selector and header."""
    return [
        {"name": u.name, "exchange": u.exchange, "index": u.index_symbol, "step": u.strike_step}
        for u in services.settings.configured_underlyings()
    ]


@router.get("/chain/data")
def chain_data(
    services: ServicesDep,
    fanout: FanoutDep,
    coordinator: CoordinatorDep,
    channels: ChannelsDep,
    expiry: Expiry = None,
) -> dict[str, Any]:
    """One expiry's streamed strikes of one underlying from the latest ticks, and the
    fleet's status."""
    chain = read_chain(services.publish_redis, channels, _iso(expiry))
    known = fanout.status
    if known is None:
        known = public_status(health_document(services.health_sources(), coordinator))
    return {**chain_document(chain), "status": known}


@dataclass(frozen=True, slots=True)
class Watcher:
    """An admitted live page: its seat and the expiry it watches."""

    seat: Seat
    expiry: str | None


async def admit_watcher(
    fanout: FanoutDep, channels: ChannelsDep, expiry: Expiry = None
) -> AsyncIterator[Watcher]:
    """A live page's seat on its underlying's subscription, taken before the response
    starts and released after it ends, however it ends (a page gone before its first
    frame, a HEAD that never streams); a page over ``TICKFLEET_CHAIN_MAX_WATCHERS`` (pages
    of every underlying together) gets 503 with ``Retry-After``. The underlying and the
    expiry are read here so that an unknown or malformed one is refused (422) before any
    seat is taken."""
    seat = fanout.admit(channels)
    if seat is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"{fanout.max_watchers} live chain pages already watch; retry later",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    try:
        yield Watcher(seat, _iso(expiry))
    finally:
        seat.release()


WatcherDep = Annotated[Watcher, Depends(admit_watcher)]


@router.get("/chain/events", response_class=EventSourceResponse)
async def chain_events(fanout: FanoutDep, watcher: WatcherDep) -> EventSourceResponse:
    """Of one underlying: ``ticks`` (the latest of each strike that ticked, every frame,
    and its index), ``status`` (when the fleet's was read again) and ``resync`` (reload
    ``/chain/data``: rows changed or frames were missed)."""
    frames = fanout.watch(watcher.seat)
    return EventSourceResponse(_events(frames, watcher.expiry), ping=PING_SECONDS)


def _iso(expiry: date | None) -> str | None:
    return expiry.isoformat() if expiry else None


async def _events(
    frames: AsyncIterator[Frame], expiry: str | None
) -> AsyncIterator[dict[str, str]]:
    shown: dict[str, Any] | None = None
    async for frame in frames:
        if frame.resync:
            yield _event("resync", {"connected": frame.connected})
        ticks = _ticks(frame, expiry)
        if ticks is not None:
            yield ticks
        if frame.status is not None and frame.status is not shown:
            shown = frame.status
            yield _event("status", {**frame.status, "connected": frame.connected})


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
