"""The subscriptions API on SQLite and PostgreSQL: status codes, all-or-nothing writes."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from producers.api import create_app
from tests.support.seed import expired_option, init_database, seed_universe
from tickfleet.config.settings import Settings
from tickfleet.storage.sql import DatabaseNotReadyError
from tickfleet.ticks.channels import Channels

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def api(
    make_settings: Callable[..., Settings], database_url: str
) -> Iterator[tuple[TestClient, list[int]]]:
    settings = make_settings(database_url=database_url, mock_strikes_each_side=100)
    options = seed_universe(settings)
    with TestClient(create_app(settings)) as client:
        yield client, [o.instrument_token for o in options]


def rows(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/subscriptions")
    assert response.status_code == 200
    return list(response.json())


def test_subscribe_one_and_many(api: tuple[TestClient, list[int]]) -> None:
    client, tokens = api
    one = client.post("/subscriptions", json={"instrument_token": tokens[0], "mode": "LTP"})
    assert one.status_code == 201
    body = one.json()
    assert body["reload"] == {"requested": True, "scheduled": True, "generation": 1, "error": None}
    assert body["mode"] == body["requested_mode"] == "LTP"
    assert body["tradingsymbol"].startswith("NIFTY")
    many = client.post("/subscriptions", json=[{"instrument_token": t} for t in tokens[1:4]])
    assert many.status_code == 200
    assert many.json()["reload"]["scheduled"] is False  # coalesced into the scheduled reload
    assert {r["instrument_token"] for r in rows(client)} == set(tokens[:4])


BAD_BODIES: list[tuple[str, Any, int]] = [
    ("unknown token", [{"instrument_token": 999_999_999}], 404),
    ("expired contract", [{"instrument_token": expired_option().instrument_token}], 409),
    ("token is text", {"instrument_token": "abc"}, 422),
    ("negative token", {"instrument_token": -5}, 422),
    ("missing token", {"mode": "FULL"}, 422),
    ("unknown field", {"instrument_token": 1, "colour": "red"}, 422),
    ("bad mode", {"instrument_token": 1, "mode": "TURBO"}, 422),
    ("empty list", [], 422),
    ("not an object", "256265", 422),
]


@pytest.mark.parametrize(("case", "body", "code"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_input_gets_its_status_and_writes_nothing(
    api: tuple[TestClient, list[int]], case: str, body: Any, code: int
) -> None:
    client, tokens = api
    client.post("/subscriptions", json={"instrument_token": tokens[0]})
    before = rows(client)
    response = client.post("/subscriptions", json=body)
    assert response.status_code == code, response.text
    assert rows(client) == before


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"instrument_token": 999_999_999}, 404),
        ({"instrument_token": 12073986}, 409),
        ({"instrument_token": 5, "pinned_account": "nobody"}, 422),
    ],
)
def test_one_bad_item_rejects_the_whole_list(
    api: tuple[TestClient, list[int]], extra: dict[str, Any], code: int
) -> None:
    client, tokens = api
    body = [{"instrument_token": t} for t in tokens[:3]] + [extra]
    response = client.post("/subscriptions", json=body)
    assert response.status_code == code
    assert any(
        d["instrument_token"] == extra["instrument_token"] for d in response.json()["detail"]
    )
    assert rows(client) == []


def test_duplicate_tokens_in_one_request_are_malformed(api: tuple[TestClient, list[int]]) -> None:
    client, tokens = api
    body = [{"instrument_token": tokens[0]}, {"instrument_token": tokens[0], "mode": "LTP"}]
    assert client.post("/subscriptions", json=body).status_code == 422
    assert rows(client) == []


def test_pinning_to_a_configured_account(api: tuple[TestClient, list[int]]) -> None:
    client, tokens = api
    ok = client.post(
        "/subscriptions", json={"instrument_token": tokens[0], "pinned_account": "sim-1"}
    )
    assert ok.status_code == 201
    assert ok.json()["pinned_account"] == ok.json()["account_id"] == "sim-1"


def test_delete_deactivates_instead_of_deleting(api: tuple[TestClient, list[int]]) -> None:
    client, tokens = api
    client.post("/subscriptions", json={"instrument_token": tokens[0]})
    gone = client.delete(f"/subscriptions/{tokens[0]}")
    assert gone.status_code == 200
    assert gone.json()["changed"] is True and gone.json()["reload"]["requested"] is True
    again = client.delete(f"/subscriptions/{tokens[0]}")
    assert again.json()["changed"] is False and again.json()["reload"]["requested"] is False
    assert client.delete("/subscriptions/424242").status_code == 404
    (row,) = rows(client)
    assert (row["status"], row["reason"]) == ("inactive", "unsubscribed")
    assert client.get("/subscriptions", params={"status": "active"}).json() == []
    assert client.get("/subscriptions", params={"status": "bogus"}).status_code == 422
    back = client.post("/subscriptions", json={"instrument_token": tokens[0]})
    assert (back.status_code, back.json()["status"]) == (201, "active")


def test_instruments_are_filtered_and_limited(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    everything = client.get("/instruments")
    assert everything.status_code == 200 and len(everything.json()) == 1000
    calls = client.get(
        "/instruments",
        params={
            "underlying": "NIFTY",
            "instrument_type": "ce",
            "strike_min": 23900,
            "strike_max": 24100,
            "limit": 5000,
        },
    )
    found = calls.json()
    assert found and all(
        i["instrument_type"] == "CE" and 23900 <= i["strike"] <= 24100 for i in found
    )
    expiry = found[0]["expiry"]
    one_expiry = client.get("/instruments", params={"expiry": expiry, "limit": 5000}).json()
    assert {i["expiry"] for i in one_expiry} == {expiry}
    assert client.get("/instruments", params={"strike_min": 5, "strike_max": 1}).status_code == 422
    assert client.get("/instruments", params={"limit": 0}).status_code == 422
    assert client.get("/instruments", params={"expiry": "tomorrow"}).status_code == 422


def test_api_key_guards_every_mutating_route(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = make_settings(database_url=database_url, api_key="s3cret")
    tokens = [o.instrument_token for o in seed_universe(settings)]
    with TestClient(create_app(settings)) as client:
        body = {"instrument_token": tokens[0]}
        assert client.post("/subscriptions", json=body).status_code == 401
        assert (
            client.post("/subscriptions", json=body, headers={"X-API-Key": "nope"}).status_code
            == 401
        )
        assert client.delete(f"/subscriptions/{tokens[0]}").status_code == 401
        assert client.post("/admin/reload").status_code == 401
        assert client.post("/admin/instrument-refresh").status_code == 401
        assert client.get("/subscriptions").status_code == 200
        ok = client.post("/subscriptions", json=body, headers={"X-API-Key": "s3cret"})
        assert ok.status_code == 201


def test_capacity_is_checked_at_admission(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = make_settings(
        database_url=database_url, max_tokens_per_connection=5, connections_per_account=1
    )
    tokens = [o.instrument_token for o in seed_universe(settings)]
    with TestClient(create_app(settings)) as client:
        first = [{"instrument_token": t} for t in tokens[:4]]
        assert client.post("/subscriptions", json=first).status_code == 200
        assert client.post("/subscriptions", json=first).status_code == 200  # not counted twice
        before = rows(client)
        over = client.post("/subscriptions", json=[{"instrument_token": t} for t in tokens[4:6]])
        assert over.status_code == 409
        details = over.json()["detail"]
        assert {d["instrument_token"] for d in details} == set(tokens[4:6])
        assert {d["problem"] for d in details} == {"capacity"}
        assert details[0]["detail"] == (
            "the fleet can stream 5 tokens, 4 are active and this request would make 6"
        )
        assert rows(client) == before
        assert (
            client.post("/subscriptions", json={"instrument_token": tokens[4]}).status_code == 201
        )
        assert client.delete(f"/subscriptions/{tokens[0]}").status_code == 200
        assert (
            client.post("/subscriptions", json={"instrument_token": tokens[5]}).status_code == 201
        )


def test_pinned_accounts_have_their_own_room(
    make_settings: Callable[..., Settings], sqlite_url: str
) -> None:
    accounts = '[{"account_id": "a", "max_connections": 1}, {"account_id": "b"}]'
    settings = make_settings(accounts=accounts, max_tokens_per_connection=2)
    tokens = [o.instrument_token for o in seed_universe(settings)]
    with TestClient(create_app(settings)) as client:
        pinned = [{"instrument_token": t, "pinned_account": "a"} for t in tokens[:3]]
        refused = client.post("/subscriptions", json=pinned)
        assert refused.status_code == 409
        assert refused.json()["detail"][0]["detail"] == (
            "account a can stream 2 tokens, 3 would be pinned to it"
        )
        assert client.post("/subscriptions", json=pinned[:2]).status_code == 200


def test_expired_contracts_are_hidden_unless_asked_for(api: tuple[TestClient, list[int]]) -> None:
    client, _ = api
    old = expired_option()
    expiry = str(old.expiry)
    assert client.get("/instruments", params={"expiry": expiry}).json() == []
    listed = client.get("/instruments", params={"expiry": expiry, "include_expired": True}).json()
    assert [i["instrument_token"] for i in listed] == [old.instrument_token]
    refused = client.post("/subscriptions", json={"instrument_token": old.instrument_token})
    assert refused.json()["detail"][0]["detail"] == f"contract expired at {expiry}T15:30:00+05:30"


def test_the_api_refuses_a_database_that_was_never_initialised(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    missing = make_settings(database_url=f"sqlite:///{tmp_path}/nowhere/tickfleet.db")
    with pytest.raises(DatabaseNotReadyError, match="init-db"), TestClient(create_app(missing)):
        pass
    assert not (tmp_path / "nowhere").exists(), "nothing may create a database but init-db"
    blank = tmp_path / "blank.db"
    sqlite3.connect(blank).close()  # a file somebody else created: no schema, no stamp
    unstamped = make_settings(database_url=f"sqlite:///{blank}")
    with (
        pytest.raises(DatabaseNotReadyError, match="no tickfleet schema"),
        TestClient(create_app(unstamped)),
    ):
        pass


def test_health_calls_an_empty_registry_a_problem(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    init_database(settings)
    with TestClient(create_app(settings)) as client:
        health = client.get("/health").json()
    assert health["status"] == "degraded"
    assert health["registry"] == {"instruments": 0}
    assert "the instrument registry is empty (run `tickfleet init-db`)" in health["problems"]


def test_the_predecessors_subscribe_call(
    api: tuple[TestClient, list[int]], redis_client: redis.Redis
) -> None:
    """One object with ``requested_mode`` and ``account_id``: 201 and the record, as before."""
    client, tokens = api
    events = redis_client.pubsub(ignore_subscribe_messages=True)
    events.subscribe(Channels().events)
    events.get_message(timeout=1)
    body = {"instrument_token": tokens[0], "requested_mode": "quote", "account_id": "sim-1"}
    created = client.post("/subscriptions", json=body)
    assert created.status_code == 201
    record = created.json()
    for name, value in {
        "instrument_token": tokens[0],
        "status": "active",
        "requested_mode": "QUOTE",
        "account_id": "sim-1",
        "segment": "NFO-OPT",
    }.items():
        assert record[name] == value, name
    assert record["tradingsymbol"].startswith("NIFTY")
    assert datetime.fromisoformat(record["created_at"]) <= datetime.fromisoformat(
        record["updated_at"]
    )
    again = client.post("/subscriptions", json={**body, "requested_mode": "FULL"})
    assert (again.status_code, again.json()["requested_mode"]) == (200, "FULL")  # an update
    message = events.get_message(timeout=2)
    assert message is not None
    assert orjson.loads(message["data"]) == {
        "event_type": "subscription_created",
        "instrument_token": tokens[0],
        "metadata": {
            "tradingsymbol": record["tradingsymbol"],
            "segment": "NFO-OPT",
            "requested_mode": "QUOTE",
            "account_id": "sim-1",
        },
        "timestamp": int(datetime.fromisoformat(record["created_at"]).timestamp()),
    }
    assert events.get_message(timeout=0.5) is None, "an update is not a new subscription"
    events.close()


@pytest.mark.parametrize(
    "body",
    [
        {"instrument_token": 1, "mode": "LTP", "requested_mode": "FULL"},
        {"instrument_token": 1, "pinned_account": "sim-1", "account_id": "other"},
        {"instrument_token": 1, "requested_mode": "TURBO"},
        {"instrument_token": 1, "account": "sim-1"},
    ],
)
def test_the_two_names_of_one_setting_must_agree(
    api: tuple[TestClient, list[int]], body: dict[str, Any]
) -> None:
    client, _ = api
    assert client.post("/subscriptions", json=body).status_code == 422
    assert rows(client) == []


def test_listing_pages_like_the_predecessor(api: tuple[TestClient, list[int]]) -> None:
    client, tokens = api
    client.post("/subscriptions", json=[{"instrument_token": t} for t in tokens[:150]])
    first = client.get("/subscriptions").json()
    assert len(first) == 100, "the predecessor's default page is 100"
    rest = client.get("/subscriptions", params={"offset": 100, "limit": 1000}).json()
    assert [r["instrument_token"] for r in first + rest] == sorted(tokens[:150])
    assert client.get("/subscriptions", params={"limit": 1001}).status_code == 422
    assert client.get("/subscriptions", params={"offset": -1}).status_code == 422
