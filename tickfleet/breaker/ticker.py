"""A background thread that runs one job periodically, or at once when woken."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger("tickfleet.breaker")


class Ticker:
    """Runs ``work`` every ``every`` seconds and whenever ``wake`` is called.

    The wake flag is cleared before the job runs, so a wake during a run is never lost: it
    makes the next wait return at once. A failing run is logged and the next one follows.
    """

    def __init__(self, name: str, every: float, work: Callable[[], None]) -> None:
        self._every = every
        self._work = work
        self._woken = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self._woken.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("%s did not stop within %.1fs", self._thread.name, timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._woken.wait(self._every)
            self._woken.clear()
            if self._stopping.is_set():
                return
            try:
                self._work()
            except Exception:
                logger.exception("%s: run failed", self._thread.name)
