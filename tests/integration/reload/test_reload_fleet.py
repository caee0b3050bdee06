"""Bounded reloads end to end: real API process, real Celery workers, real Redis and SQLite.

Runs are observed by the test itself (tests.support.instrumented_workers records the
start and end of every reload body), never taken from the coordinator's own counters.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.runs import Run, assert_no_overlap, reload_runs
from tests.support.seed import seed_universe
from tickfleet.config.settings import Settings
from tickfleet.keyspace.tasks import QUEUE_CONTROL, TASK_RELOAD
from workers.app import make_app

pytestmark = pytest.mark.timeout(120)
APP = "tests.support.instrumented_workers"


def wait_quiet(client: httpx.Client, timeout: float = 40.0) -> dict[str, Any]:
    """Poll /health until every reload request is served and nothing is scheduled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reload = client.get("/health").json()["reload"]
        done = reload["done_generation"] == reload["generation"] > 0
        if done and not reload["scheduled"] and not reload["running"] and reload["pending"] == 0:
            return dict(reload)
        time.sleep(0.2)
    raise TimeoutError(f"reloads did not settle: {reload}")


def wait_for_runs(r: redis.Redis, count: int, timeout: float = 20.0) -> list[Run]:
    wait_until(lambda: len(reload_runs(r)) >= count, timeout, 0.05, f"{count} reload runs")
    return reload_runs(r)


def placed_tokens(client: httpx.Client) -> set[int]:
    subs = client.get("/subscriptions", params={"status": "active"}).json()
    return {s["instrument_token"] for s in subs if s["account"] is not None}


@pytest.fixture
def start_fleet(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> Iterator[Callable[..., tuple[Fleet, httpx.Client, list[int]]]]:
    clients: list[httpx.Client] = []

    def start(**overrides: Any) -> tuple[Fleet, httpx.Client, list[int]]:
        settings = make_settings(**overrides)
        options = seed_universe(settings)
        fleet = fleet_factory(settings, APP)
        _, url = fleet.api()
        client = httpx.Client(base_url=url, timeout=30)
        clients.append(client)
        return fleet, client, [o.instrument_token for o in options]

    yield start
    for client in clients:
        client.close()


def test_fifty_concurrent_subscriptions_lead_to_at_most_two_reloads(
    start_fleet: Callable[..., tuple[Fleet, httpx.Client, list[int]]], redis_client: redis.Redis
) -> None:
    fleet, client, tokens = start_fleet()
    fleet.control_worker()
    wanted = tokens[:50]

    def subscribe(token: int) -> httpx.Response:
        return client.post("/subscriptions", json={"instrument_token": token, "mode": "QUOTE"})

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(subscribe, wanted))
    assert [r.status_code for r in responses] == [201] * 50
    assert all(r.json()["reload"]["requested"] for r in responses)
    # The API writes concurrent POSTs in shared batches, one reload request per batch;
    # every answer of a batch carries that request (its generation).
    asked = {r.json()["reload"]["generation"]: r.json()["reload"]["scheduled"] for r in responses}
    scheduled = sum(asked.values())
    assert 1 <= len(asked) <= 50 and scheduled <= 2

    reload = wait_quiet(client)
    time.sleep(fleet.settings.reload_min_interval_seconds + 1.5)  # room for a stray extra run
    runs = reload_runs(redis_client)
    print(f"50 concurrent subscriptions -> {len(runs)} reload run(s)")
    assert 1 <= len(runs) <= 2, runs
    assert_no_overlap(runs)
    assert reload["requests"] == len(asked)
    assert reload["runs"] == len(runs) and reload["last_error"] is None
    assert placed_tokens(client) == set(wanted)
    metrics = client.get("/metrics").text  # the API flushed its counters long ago
    assert f"reload_requests_total {float(len(asked))}" in metrics
    assert f'reload_runs_total{{result="ok"}} {float(len(runs))}' in metrics
    assert f"reload_coalesced_total {float(len(asked) - scheduled)}" in metrics
    assert fleet.processes[1].log().count("reload coalesced") == len(runs)


def test_an_instrument_refresh_runs_on_a_worker_and_requests_a_reload(
    start_fleet: Callable[..., tuple[Fleet, httpx.Client, list[int]]],
) -> None:
    fleet, client, _ = start_fleet()
    worker = fleet.control_worker()
    queued = client.post("/admin/instrument-refresh")
    assert queued.status_code == 202
    worker.wait_for_log("instruments refreshed from offline universe", timeout=20)
    worker.wait_for_log("reload requested (instrument refresh)", timeout=5)
    reload = wait_quiet(client)
    assert reload["runs"] >= 1


def test_reloads_never_overlap_under_contention(
    start_fleet: Callable[..., tuple[Fleet, httpx.Client, list[int]]], redis_client: redis.Redis
) -> None:
    fleet, client, tokens = start_fleet(
        reload_debounce_seconds=0.05, reload_max_wait_seconds=0.1, reload_min_interval_seconds=0.0
    )
    hold = {"TEST_RELOAD_HOLD_SECONDS": "0.15"}
    fleet.control_worker("control-a", concurrency=2, env=hold)
    fleet.control_worker("control-b", concurrency=2, env=hold)
    celery = make_app(fleet.settings)
    for i, token in enumerate(tokens[:60]):
        assert client.post("/subscriptions", json={"instrument_token": token}).status_code == 201
        if i % 15 == 0:  # duplicate task copies that bypass coalescing and race for the lock
            for _ in range(8):
                celery.send_task(TASK_RELOAD, queue=QUEUE_CONTROL)
        time.sleep(0.05)
    wait_quiet(client)
    runs = reload_runs(redis_client)
    assert len(runs) >= 3, "the test must provoke several runs to prove anything"
    assert_no_overlap(runs)
    assert placed_tokens(client) == set(tokens[:60])


def test_a_request_during_a_run_leads_to_exactly_one_more_run_that_sees_it(
    start_fleet: Callable[..., tuple[Fleet, httpx.Client, list[int]]], redis_client: redis.Redis
) -> None:
    fleet, client, tokens = start_fleet(reload_min_interval_seconds=1.0)
    fleet.control_worker(env={"TEST_RELOAD_HOLD_SECONDS": "2.0"})
    assert client.post("/subscriptions", json={"instrument_token": tokens[0]}).status_code == 201
    first = wait_for_runs(redis_client, 1)[0]
    late = client.post("/subscriptions", json=[{"instrument_token": t} for t in tokens[1:4]])
    posted_at = time.time()
    assert late.status_code == 200  # a list keeps its answer
    wait_quiet(client)
    time.sleep(2.5)  # a third run would have started by now
    runs = reload_runs(redis_client)
    assert runs[0].run == first.run and runs[0].end is not None
    assert posted_at < runs[0].end, "the request must land while the first run is running"
    assert len(runs) == 2, runs
    assert runs[1].start >= runs[0].end
    assert placed_tokens(client) == set(tokens[:4])


def test_a_worker_killed_mid_reload_blocks_the_next_one_no_longer_than_the_lock_ttl(
    start_fleet: Callable[..., tuple[Fleet, httpx.Client, list[int]]], redis_client: redis.Redis
) -> None:
    lock_ttl = 3.0
    fleet, client, tokens = start_fleet(
        reload_lock_ttl_seconds=lock_ttl,
        reload_debounce_seconds=0.2,
        reload_max_wait_seconds=0.5,
        reload_min_interval_seconds=0.5,
    )
    doomed = fleet.control_worker("doomed", concurrency=1, env={"TEST_RELOAD_HOLD_SECONDS": "60"})
    assert client.post("/subscriptions", json={"instrument_token": tokens[0]}).status_code == 201
    stuck = wait_for_runs(redis_client, 1)[0]
    fleet.control_worker("survivor", concurrency=1)
    assert client.get("/health").json()["reload"]["running"], "the doomed run holds the lock"
    doomed.kill()
    killed_at = time.time()
    assert client.post("/subscriptions", json={"instrument_token": tokens[1]}).status_code == 201
    runs = wait_for_runs(redis_client, 2, timeout=lock_ttl + 15)
    after_kill = runs[1].start - killed_at
    print(f"next reload started {after_kill:.2f}s after the SIGKILL (lock TTL {lock_ttl}s)")
    assert stuck.end is None
    assert after_kill <= lock_ttl + 1.5, f"next reload started {after_kill:.2f}s after the kill"
    wait_quiet(client)
    assert placed_tokens(client) == {tokens[0], tokens[1]}
