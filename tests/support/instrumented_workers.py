"""The real Celery app with the reload body wrapped, so tests observe runs themselves.

Start a worker with ``celery -A tests.support.instrumented_workers worker ...``. Every
reload run appends "start <run> <t>" and "end <run> <t>" to a Redis list the test reads;
``TEST_RELOAD_HOLD_SECONDS`` stretches each run so a test can act while one is running.
Nothing here changes what the coordinator does: the wrapper sits around the body only.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from tickfleet.rebalance import Rebalancer
from workers import app

RUNS_KEY = "test:reload:runs"
_body = Rebalancer.__call__


def _recorded(self: Rebalancer) -> Mapping[str, Any]:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    run = uuid.uuid4().hex[:8]
    client.rpush(RUNS_KEY, f"start {run} {time.time()}")
    try:
        time.sleep(float(os.environ.get("TEST_RELOAD_HOLD_SECONDS", "0")))
        return _body(self)
    finally:
        client.rpush(RUNS_KEY, f"end {run} {time.time()}")
        client.close()


Rebalancer.__call__ = _recorded  # type: ignore[method-assign]

__all__ = ["app"]
