"""Fixtures for the breaker's integration tests: spawned worker processes, always stopped."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

import pytest


class Spawner:
    """Starts worker processes with the spawn method (a fresh interpreter, like a real host)."""

    def __init__(self) -> None:
        self.context: SpawnContext = multiprocessing.get_context("spawn")
        self.processes: list[SpawnProcess] = []

    def __call__(self, target: Callable[..., None], *args: Any) -> SpawnProcess:
        process = self.context.Process(target=target, args=args, daemon=True)
        process.start()
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)


@pytest.fixture
def spawn() -> Iterator[Spawner]:
    spawner = Spawner()
    yield spawner
    spawner.stop_all()

