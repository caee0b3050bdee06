"""Hostile input gets a small 4xx, never a 500, and never changes what it should not.

The first release answered 500 to ``NaN``, ``Infinity`` and ``1e400`` tokens and to
offsets past SQL's 64-bit integers, took ``true`` for token 1, echoed a 2.7 MB invalid
body back as a 20 MB 422, and reset an LTP subscription to FULL when a POST named no
mode. Validation runs in-process; the body limit is tried against a real uvicorn, where
a client streams the body over a socket.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from producers.api import create_app
from producers.api.errors import MAX_ERRORS, MAX_INPUT_CHARS
from tests.conftest import Fleet
from tests.support.seed import seed_universe
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(60)

LIMIT = 64 * 1024
SMALL = 4096  # no error body may be larger than this


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(api_max_body_bytes=LIMIT)


@pytest.fixture
def api(settings: Settings) -> Iterator[tuple[TestClient, list[int]]]:
    tokens = [o.instrument_token for o in seed_universe(settings)]
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, tokens


def _post_raw(client: TestClient, body: str) -> httpx.Response:
    answer: httpx.Response = client.post(
        "/subscriptions", content=body, headers={"Content-Type": "application/json"}
    )
    return answer


def _listed(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/subscriptions", params={"limit": 1000})
    assert response.status_code == 200
    return list(response.json())


@pytest.mark.parametrize(
    "token", ["NaN", "Infinity", "-Infinity", "1e400", "true", "false", "1.0", '"1"', "null"]
)
def test_a_token_that_is_not_a_json_integer_is_refused(
    api: tuple[TestClient, list[int]], token: str
) -> None:
    client, _ = api
    response = _post_raw(client, f'{{"instrument_token": {token}, "mode": "LTP"}}')

    assert response.status_code == 422, response.text
    assert len(response.content) < SMALL
    problem = response.json()["detail"][0]
    assert problem["loc"][-1] == "instrument_token"
    assert json.dumps(problem["input"]) != "NaN"  # the body is strict JSON
    assert _listed(client) == []


def test_true_is_not_token_one(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    assert _post_raw(client, '{"instrument_token": true}').status_code == 422
    both = _post_raw(client, '[{"instrument_token": 1}, {"instrument_token": true}]')
    assert both.status_code == 422
    assert _listed(client) == []


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/instruments", {"offset": "9223372036854775808"}),
        ("/instruments", {"offset": "-1"}),
        ("/instruments", {"limit": "99999999999999999999"}),
        ("/instruments", {"strike_min": "nan"}),
        ("/instruments", {"strike_max": "inf"}),
        ("/subscriptions", {"offset": "9223372036854775808"}),
        ("/subscriptions", {"limit": "1e400"}),
    ],
)
def test_out_of_range_query_numbers_are_refused(
    api: tuple[TestClient, list[int]], path: str, params: dict[str, str]
) -> None:
    client, _ = api
    response = client.get(path, params=params)

    assert response.status_code == 422, response.text
    assert len(response.content) < SMALL


@pytest.mark.parametrize("token", ["9223372036854775808", "4294967296", "0", "-1", "1e3", "x"])
def test_an_out_of_range_path_token_is_refused(
    api: tuple[TestClient, list[int]], token: str
) -> None:
    client, _ = api
    response = client.delete(f"/subscriptions/{token}")

    assert response.status_code == 422, response.text
    assert len(response.content) < SMALL


def test_a_large_invalid_body_gets_a_small_answer(api: tuple[TestClient, list[int]]) -> None:
    """Thousands of invalid items, each long: the 422 lists a few, each cut short."""
    client, _ = api
    item = {"instrument_token": "x" * 1000, "mode": "LTP"}
    body = json.dumps([item] * 50)  # 52 kB, under the limit

    response = _post_raw(client, body)

    assert response.status_code == 422
    assert len(response.content) < SMALL
    answer = response.json()
    assert len(answer["detail"]) == MAX_ERRORS
    assert answer["error_count"] > MAX_ERRORS
    quoted = [p["input"] for p in answer["detail"]]
    assert all(len(q if isinstance(q, str) else json.dumps(q)) <= MAX_INPUT_CHARS for q in quoted)


def test_a_post_without_mode_keeps_the_mode(api: tuple[TestClient, list[int]]) -> None:
    client, tokens = api
    first, second = tokens[:2]
    assert client.post("/subscriptions", json={"instrument_token": first, "mode": "LTP"}).is_success
    kept = client.post("/subscriptions", json={"instrument_token": first})
    assert (kept.status_code, kept.json()["mode"]) == (200, "LTP")
    listed = client.post("/subscriptions", json=[{"instrument_token": t} for t in (first, second)])
    modes = {s["instrument_token"]: s["mode"] for s in listed.json()["subscriptions"]}
    assert modes == {first: "LTP", second: "FULL"}  # a new one streams FULL
    changed = client.post("/subscriptions", json={"instrument_token": first, "mode": "QUOTE"})
    assert changed.json()["mode"] == "QUOTE"


# --- the body limit, over a real socket --------------------------------------------------


@pytest.fixture
def served(settings: Settings, fleet_factory: Callable[..., Fleet]) -> str:
    seed_universe(settings)
    _, base = fleet_factory(settings).api()
    return base


def _huge_invalid_body(size: int) -> bytes:
    item = b'{"instrument_token": "' + b"x" * 1000 + b'"},'
    return b"[" + item * (size // len(item)) + b'{"instrument_token": 1}]'


def test_a_body_over_the_limit_is_refused_at_once(served: str) -> None:
    body = _huge_invalid_body(2_700_000)
    started = time.monotonic()
    answers = [
        httpx.post(
            f"{served}/subscriptions",
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        for _ in range(4)
    ]
    elapsed = time.monotonic() - started

    for answer in answers:
        assert answer.status_code == 413
        assert answer.json() == {
            "detail": f"request body over {LIMIT} bytes (TICKFLEET_API_MAX_BODY_BYTES)"
        }
    assert elapsed < 2.0  # four of these once stalled the API for 7.5 s
    assert httpx.get(f"{served}/subscriptions", timeout=5).status_code == 200


def test_a_streamed_body_over_the_limit_is_refused(served: str) -> None:
    """No Content-Length (chunked): the bytes are counted as they arrive."""

    def chunks() -> Iterator[bytes]:
        body = _huge_invalid_body(LIMIT * 4)
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    answer = httpx.post(
        f"{served}/subscriptions",
        content=chunks(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert answer.status_code == 413
    assert len(answer.content) < SMALL


def test_a_body_just_under_the_limit_is_read(served: str) -> None:
    body = b'{"instrument_token": 1.5, "pinned_account": "' + b"a" * (LIMIT - 60) + b'"}'
    assert len(body) <= LIMIT

    answer = httpx.post(
        f"{served}/subscriptions",
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )

    assert answer.status_code == 422  # parsed and validated, not refused for its size
    assert len(answer.content) < SMALL
