"""``POST /subscriptions`` without FastAPI's per-request machinery, when the request is plain.

Under a burst of subscribes the API's event loop is its bottleneck, and FastAPI's own
handling of the route was most of the loop's time: solving the dependencies (the exposure
check, the API key) took 45 % of a POST's samples, validating and answering much of the
rest (py-spy over ``bench/reload_burst.py``). A plain request (``Content-Type:
application/json``, a body the route's own type validates) is handled here: the same
exposure and key checks (the same functions, raising the same errors), the same write
(``routes.subscriptions.subscribe``) and the same answer. Anything else (another content
type, a body that is not JSON or does not validate) goes on, body and all, to the FastAPI
route, which answers it exactly as before. The FastAPI route stays the API's description
(OpenAPI) and its answer to everything that is not plain.
"""

from __future__ import annotations

import orjson
from fastapi import Request
from pydantic import TypeAdapter, ValidationError
from starlette.routing import Match, Route

from producers.api.deps import require_api_key
from producers.api.errors import Message, Receive, Scope, Send
from producers.api.routes.subscriptions import subscribe
from producers.api.schemas import SubscriptionIn
from producers.api.security import refuse_exposed

PATH = "/subscriptions"
HANDED_ON = "tickfleet.handed_on"  # scope key: this request is the FastAPI route's
_BODY = TypeAdapter(SubscriptionIn | list[SubscriptionIn])  # the route's body parameter


class _PlainOnly(Route):
    """Matches ``POST /subscriptions`` until the fast path hands the request on."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get(HANDED_ON):
            return Match.NONE, {}
        return super().matches(scope)


def fast_subscribe_route() -> Route:
    """The route to put before the FastAPI route of ``POST /subscriptions``."""
    return _PlainOnly(PATH, _FastSubscribe(), methods=["POST"], include_in_schema=False)


class _FastSubscribe:
    """An ASGI app (not a function, which a Starlette route would take for an endpoint)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _fast_subscribe(scope, receive, send)


async def _fast_subscribe(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    body = await request.body()
    items = _plain(request, body)
    if items is None:
        scope[HANDED_ON] = True
        await scope["router"](scope, _replayed(body, receive), send)
        return
    # The route's dependencies, in its order; an HTTPException is answered as from it.
    await refuse_exposed(request)
    headers = request.headers
    await require_api_key(request, headers.get("x-api-key"), headers.get("authorization"))
    answer = await subscribe(request, items)
    await answer(scope, receive, send)


def _plain(request: Request, body: bytes) -> SubscriptionIn | list[SubscriptionIn] | None:
    """The body as the route's parameter, or None when FastAPI should look at it.

    FastAPI reads a JSON body with ``json.loads``, then validates the Python value. orjson
    (three times faster) reads strict JSON to the same values and refuses what
    ``json.loads`` alone takes (NaN, integers past 64 bits, lone surrogates); those go on
    to FastAPI, so what is read here is what FastAPI would have read."""
    if request.headers.get("content-type") != "application/json":
        return None
    try:
        return _BODY.validate_python(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError):
        return None


def _replayed(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the FastAPI route: the body already read, then what follows."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
