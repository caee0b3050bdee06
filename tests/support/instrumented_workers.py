"""The real Celery app with two observation points, so tests see what happens themselves.

Start a worker with ``celery -A tests.support.instrumented_workers worker ...``.
- Every reload run appends "start <run> <t>" and "end <run> <t>" to a Redis list;
  ``TEST_RELOAD_HOLD_SECONDS`` stretches each run so a test can act while one runs.
- Every successful publish batch appends "<stream> <pid> <t> <n>" to another list, so a
  test can tell which process published for which stream, and when.
Nothing here changes what the coordinator or the publisher do: wrappers sit around them.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from tests.support.runs import PUBLISHES_KEY, RUNS_KEY
from tickfleet.control.rebalance import Rebalancer
from tickfleet.stream.publisher import PendingTick, TickPublisher
from workers import app

_body = Rebalancer.__call__
_succeeded = TickPublisher._succeeded
_recorder: list[redis.Redis] = []


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


def _published(self: TickPublisher, batch: list[PendingTick]) -> None:
    _succeeded(self, batch)
    if not _recorder:
        _recorder.append(redis.Redis.from_url(os.environ["REDIS_URL"]))
    _recorder[0].rpush(PUBLISHES_KEY, f"{self._stream} {os.getpid()} {time.time()} {len(batch)}")


Rebalancer.__call__ = _recorded  # type: ignore[method-assign,assignment]
TickPublisher._succeeded = _published  # type: ignore[method-assign]

__all__ = ["app"]
