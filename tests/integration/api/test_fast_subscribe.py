"""A plain ``POST /subscriptions`` takes the fast path (``producers.api.fast_subscribe``) and
is answered exactly as the FastAPI route answers it; anything else goes to the route.

Each request is sent twice: as ``application/json`` (plain: the fast path) and as
``application/json; charset=utf-8`` (which the fast path leaves to the route), and the two
answers must match: status, headers and body, byte for byte where the request's own
token and times do not differ. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from producers.api import create_app
from producers.api.errors import Receive, Scope, Send
from producers.api.fast_subscribe import HANDED_ON
from tests.support.seed import expired_option, seed_universe
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(60)
PLAIN = "application/json"
ROUTED = "application/json; charset=utf-8"
API_KEY = "fast-path-key-0123456789abcdef"


@dataclass
class Api:
    client: TestClient
    tokens: list[int]
    handed_on: list[bool]

    def post(
        self,
        body: Any,
        content_type: str,
        *,
        routed: bool | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST ``body``; ``routed``: whether the FastAPI route must have answered it
        (None: the route for ``ROUTED``, the fast path for ``PLAIN``)."""
        sent: httpx.Response = self.client.post(
            "/subscriptions",
            content=body if isinstance(body, bytes) else orjson.dumps(body),
            headers={"Content-Type": content_type, **(headers or {})},
        )
        expected = content_type == ROUTED if routed is None else routed
        assert self.handed_on.pop() is expected, (body, content_type)
        return sent


def _spied(app: Any, handed_on: list[bool]) -> Callable[[Scope, Receive, Send], Any]:
    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope, receive, send)
        if scope["type"] == "http" and scope["method"] == "POST":
            handed_on.append(bool(scope.get(HANDED_ON)))

    return spy


@pytest.fixture
def make_api(
    make_settings: Callable[..., Settings], database_url: str
) -> Iterator[Callable[..., Api]]:
    with ExitStack() as clients:

        def make(**overrides: Any) -> Api:
            settings = make_settings(database_url=database_url, **overrides)
            tokens = [o.instrument_token for o in seed_universe(settings)]
            handed_on: list[bool] = []
            client = clients.enter_context(TestClient(_spied(create_app(settings), handed_on)))
            return Api(client, tokens, handed_on)

        yield make


def _same(fast: httpx.Response, routed: httpx.Response) -> None:
    assert fast.status_code == routed.status_code
    assert fast.headers == routed.headers
    assert fast.content == routed.content


_OWN = re.compile(
    rb'"(instrument_token|tradingsymbol|created_at|updated_at|generation|scheduled)":[^,}]+'
)


def _alike(fast: httpx.Response, routed: httpx.Response) -> None:
    """Equal but for the fields a request's own token and time decide (and whether it
    was the one that scheduled the reload)."""
    assert fast.status_code == routed.status_code
    assert fast.headers["content-type"] == routed.headers["content-type"] == PLAIN
    assert _OWN.sub(rb"\1", fast.content) == _OWN.sub(rb"\1", routed.content)


def test_a_plain_post_is_answered_as_the_route_answers_it(make_api: Callable[..., Api]) -> None:
    api = make_api()
    a, b, c, d, e, f, *_ = api.tokens
    created = [api.post({"instrument_token": t}, kind) for t, kind in ((a, PLAIN), (b, ROUTED))]
    assert created[0].status_code == 201
    _alike(*created)
    updated = [
        api.post({"instrument_token": t, "mode": "ltp"}, kind)
        for t, kind in ((a, PLAIN), (b, ROUTED))
    ]
    assert updated[0].status_code == 200
    assert orjson.loads(updated[0].content)["mode"] == "LTP"
    _alike(*updated)
    listed = [
        api.post([{"instrument_token": x}, {"instrument_token": y}], kind)
        for x, y, kind in ((c, d, PLAIN), (e, f, ROUTED))
    ]
    assert listed[0].status_code == 200
    _alike(*listed)

    for body in (
        {"instrument_token": 999_999_999},  # 404
        [{"instrument_token": expired_option().instrument_token}],  # 409
        [{"instrument_token": a}, {"instrument_token": a}],  # 422 from the write
        [],  # 422 empty
    ):
        _same(api.post(body, PLAIN), api.post(body, ROUTED))
    for invalid in (
        {"instrument_token": True},  # 422 from validation: the route's, both times
        b'{"instrument_token": NaN}',  # JSON to json.loads only
        b'{"instrument_token": 1180591620717411303424}',  # past 64 bits: json.loads only
    ):
        _same(api.post(invalid, PLAIN, routed=True), api.post(invalid, ROUTED))


def test_the_key_and_the_room_are_checked_as_by_the_route(make_api: Callable[..., Api]) -> None:
    api = make_api(api_key=API_KEY, max_tokens_per_connection=1, connections_per_account=1)
    a, b, *_ = api.tokens
    body = {"instrument_token": a}
    refused = api.post(body, PLAIN)
    assert refused.status_code == 401
    _same(refused, api.post(body, ROUTED))
    wrong = {"X-API-Key": "not-the-key"}
    _same(api.post(body, PLAIN, headers=wrong), api.post(body, ROUTED, headers=wrong))

    key = {"X-API-Key": API_KEY}
    assert api.post(body, PLAIN, headers=key).status_code == 201
    full = api.post({"instrument_token": b}, PLAIN, headers=key)
    assert full.status_code == 409
    _same(full, api.post({"instrument_token": b}, ROUTED, headers=key))
