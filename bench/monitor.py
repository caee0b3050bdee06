"""Cost of starting and running a task through the task monitor, against a plain task.

Every coroutine of a stream is created through ``TaskMonitor.create_monitored_task``,
and the predecessor promised less than 1 ms of overhead per task. The baseline is
``loop.create_task`` on the same trivial coroutines, timed in the same run, rounds
interleaved so both see the same machine state; the figures are medians over rounds.
The last line printed is one JSON object.

    python bench/monitor.py [--tasks 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.runtime.clock import SystemClock
from tickfleet.supervision import TaskMonitor, process_context
from tickfleet.supervision.failures import MemoryFailureLog

TARGET_OVERHEAD_US = 1_000.0

Start = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[None]"]


async def trivial() -> None:
    return None


async def per_task_us(start: Start, tasks: int) -> float:
    """Microseconds per task to start ``tasks`` tasks and wait until all have run."""
    began = time.perf_counter()
    await asyncio.gather(*[start(trivial()) for _ in range(tasks)])
    return (time.perf_counter() - began) / tasks * 1e6


async def measure(tasks: int, rounds: int) -> tuple[float, float]:
    monitor = TaskMonitor(
        process_context(stream="bench"),
        MetricsBuffer(),
        MemoryFailureLog(),
        SystemClock(),
        logging.getLogger("bench.monitor"),
    )
    loop = asyncio.get_running_loop()

    def monitored(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return monitor.create_monitored_task(coro, "bench")

    plain_runs: list[float] = []
    monitored_runs: list[float] = []
    await per_task_us(loop.create_task, tasks)  # warm-up
    await per_task_us(monitored, tasks)
    for _ in range(rounds):
        plain_runs.append(await per_task_us(loop.create_task, tasks))
        monitored_runs.append(await per_task_us(monitored, tasks))
    return statistics.median(monitored_runs), statistics.median(plain_runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    monitored_us, plain_us = asyncio.run(measure(args.tasks, args.rounds))
    overhead_us = monitored_us - plain_us
    ratio = monitored_us / plain_us
    print(f"{args.tasks} trivial tasks x {args.rounds} rounds (medians)")
    print(f"plain create_task:      {plain_us:8.2f} us/task")
    print(f"create_monitored_task:  {monitored_us:8.2f} us/task")
    print(f"overhead:               {overhead_us:8.2f} us/task  ({ratio:.2f}x plain)")
    verdict = "OK" if overhead_us < TARGET_OVERHEAD_US else "MISSED"
    print(f"target < {TARGET_OVERHEAD_US:.0f} us overhead per task: {verdict}")
    figures = {
        "monitored_us_per_task": round(monitored_us, 3),
        "plain_us_per_task": round(plain_us, 3),
        "overhead_us": round(overhead_us, 3),
        "ratio": round(ratio, 3),
        "tasks": args.tasks,
        "rounds": args.rounds,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
