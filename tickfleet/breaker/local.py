"""A breaker that decides alone, for code with no fleet to share with (and for tests)."""

from __future__ import annotations

from types import TracebackType

from tickfleet.breaker.config import BreakerConfig
from tickfleet.breaker.core import BreakerCore
from tickfleet.clock import Clock, SystemClock
from tickfleet.metrics import Metrics


class LocalBreaker(BreakerCore):
    """The same rules as ``SharedBreaker``, with all state in this process; source "local"."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        *,
        worker: str | None = None,
    ) -> None:
        super().__init__(
            name, config or BreakerConfig(), clock or SystemClock(), metrics, worker, False
        )

    def start(self) -> None:
        """Nothing runs in the background: present so breakers are interchangeable."""

    def stop(self) -> None:
        """Nothing runs in the background: present so breakers are interchangeable."""

    def __enter__(self) -> LocalBreaker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
