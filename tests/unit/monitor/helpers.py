"""Builders shared by the monitor tests."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import ManualClock
from tickfleet.supervision import TaskMonitor
from tickfleet.supervision.failures import FailureSink, MemoryFailureLog

CONTEXT = {"stream": "acct-7", "account": "ZX1234", "worker": "stream@host-a"}
LOGGER = "tests.monitor"


def counted(metrics: MetricsBuffer, task: str) -> float:
    """The pending ``task_failures_total{task=...}`` delta."""
    label = orjson.dumps([task]).decode()
    return metrics.pending().get(("task_failures_total", label), 0.0)


@dataclass
class Rig:
    monitor: TaskMonitor
    metrics: MetricsBuffer
    sink: MemoryFailureLog
    clock: ManualClock


def rig(sink: FailureSink | None = None, **options: int) -> Rig:
    memory = MemoryFailureLog()
    metrics = MetricsBuffer()
    clock = ManualClock()
    monitor = TaskMonitor(
        CONTEXT, metrics, sink or memory, clock, logging.getLogger(LOGGER), **options
    )
    return Rig(monitor, metrics, memory, clock)


def failure_records(records: list[logging.LogRecord], task: str) -> list[logging.LogRecord]:
    """ERROR records the monitor wrote for ``task`` (supervisor records carry no exc type)."""
    return [
        r
        for r in records
        if r.levelno == logging.ERROR
        and getattr(r, "tf_task", None) == task
        and hasattr(r, "tf_exc_type")
    ]
