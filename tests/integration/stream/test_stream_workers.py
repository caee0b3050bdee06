"""Stream starts go only where a live stream worker has room; /health says why not."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Fleet
from tests.support.polling import wait_until
from tests.support.seed import seed_universe
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(150)


def test_without_a_stream_worker_no_start_piles_up_and_a_frozen_one_is_named(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_client: redis.Redis,
) -> None:
    settings = make_settings(
        feed="mock",
        **FAST_FLEET,
        stream_start_grace_seconds=2.0,
    )
    options = seed_universe(settings, with_expired=False)
    fleet = fleet_factory(settings)
    with fleet.starting():
        _, url = fleet.api()
        fleet.control_worker()
        fleet.beat()
    celery_keys = f"{settings.key_prefix}celery:*"

    def queued() -> int:
        """Messages waiting in any of the fleet's Celery queues (Redis lists)."""
        lists = [k for k in redis_client.scan_iter(celery_keys) if redis_client.type(k) == b"list"]
        return sum(int(redis_client.llen(k)) for k in lists)

    with httpx.Client(base_url=url, timeout=30) as api:
        body = [{"instrument_token": o.instrument_token} for o in options[:2]]
        assert api.post("/subscriptions", json=body).status_code == 200
        time.sleep(8.0)  # four start graces: without the gate, starts would pile up
        # Starts nobody runs would stay queued; a control worker that the machine's load
        # holds back catches up with the beat's watchdog messages.
        wait_until(lambda: queued() == 0, 10, 0.2, "no message waiting")
        doc = api.get("/health").json()
        assert (
            "no live worker consumes the stream queue: 2 streams cannot start" in doc["problems"]
        ), doc["problems"]

        worker = fleet.stream_worker("stream-a", concurrency=3)
        wait_until(lambda: _held(api) == 2, 20, 0.2, "both streams on the new worker")
        wait_until(lambda: queued() == 0, 10, 0.2, "no message waiting")

        os.kill(worker.pid, signal.SIGSTOP)  # the main process freezes; its children run
        try:
            frozen = time.monotonic()
            wait_until(lambda: _named(api, "stream-a@"), 20, 0.5, "the frozen worker named")
            print(f"a frozen stream worker named after {time.monotonic() - frozen:.1f}s")
        finally:
            os.kill(worker.pid, signal.SIGCONT)
        wait_until(lambda: not _named(api, "stream-a@"), 10, 0.5, "live again once resumed")


def _held(api: httpx.Client) -> int:
    streams: dict[str, Any] = api.get("/health").json()["streams"]
    return sum(1 for s in streams.values() if s["lease_holder"])


def _named(api: httpx.Client, hostname: str) -> bool:
    doc = api.get("/health").json()
    return any(hostname in w and "silent" in w for w in doc["warnings"])
