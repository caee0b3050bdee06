"""Worker processes started the way a new host would start them, and always stopped."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any


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

    def stop_all(self, grace: float = 5.0) -> None:
        """Give every process ``grace`` seconds in total to finish, then kill the rest."""
        deadline = time.monotonic() + grace
        for process in self.processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
