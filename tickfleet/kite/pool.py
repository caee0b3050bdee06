"""An account's Kite connections: one per connection of its assignment, kept to a plan.

The plan says which tokens each connection streams, in which mode. ``plan`` may change
at any time: tokens moved, added or removed on a connection are sent on its open socket,
a connection that gains its first tokens is opened, one left without tokens is closed.
``run`` keeps the connections up under one set of credentials until it is cancelled or
one of them learns that Kite refused the session (``SessionRefusedError``), which ends
them all: every connection of an account shares its access token.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from tickfleet.kite.connection import (
    ConnectionConfig,
    ConnectionStatus,
    KiteConnection,
    TickHandler,
)
from tickfleet.kite.packets import TickMode
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock
from tickfleet.supervision.cancel import cancel_and_wait

log = logging.getLogger("tickfleet.kite")

STOP_SECONDS = 5.0

Plan = Mapping[int, Mapping[int, TickMode]]
"""Connection number → token → mode."""


class ConnectionPool:
    def __init__(
        self,
        name: str,
        config: ConnectionConfig,
        on_ticks: TickHandler,
        clock: Clock,
        metrics: Metrics,
        statuses: dict[int, ConnectionStatus],
    ) -> None:
        """``statuses`` is kept current, one entry per planned connection, for /health."""
        self.name = name
        self._config = config
        self._on_ticks = on_ticks
        self._clock = clock
        self._metrics = metrics
        self.statuses = statuses
        self._plan: dict[int, Mapping[int, TickMode]] = {}
        self._open: dict[int, KiteConnection] = {}
        self._closing: set[asyncio.Task[None]] = set()  # cancelled, still closing their socket
        self._replanned = asyncio.Event()

    @property
    def tokens(self) -> int:
        return sum(len(modes) for modes in self._plan.values())

    def plan(self, plan: Plan) -> None:
        """Stream ``plan`` from now on; open connections get only the difference."""
        self._plan = {number: modes for number, modes in plan.items() if modes}
        for number, connection in self._open.items():
            connection.want(self._plan.get(number, {}))
        for number in list(self.statuses):
            if number not in self._plan:
                del self.statuses[number]
        for number, modes in self._plan.items():
            self.statuses.setdefault(number, ConnectionStatus(number)).wanted = len(modes)
        self._replanned.set()

    async def run(self, url: str, on_open: Callable[[], None]) -> None:
        """Keep the planned connections up on ``url`` until cancelled or refused."""
        running: dict[int, asyncio.Task[None]] = {}
        try:
            while True:
                self._replanned.clear()
                self._reconcile(url, on_open, running)
                await self._until_change(running)
        finally:
            await cancel_and_wait({*running.values(), *self._closing}, STOP_SECONDS)
            self._closing.clear()
            self._open.clear()
            for status in self.statuses.values():
                status.connected = False

    def _reconcile(
        self, url: str, on_open: Callable[[], None], running: dict[int, asyncio.Task[None]]
    ) -> None:
        self._closing = {task for task in self._closing if not task.done()}
        for number in [n for n in running if n not in self._plan]:
            task = running.pop(number)
            task.cancel()  # its socket closes as the task unwinds
            self._closing.add(task)
            self._open.pop(number, None)
            log.info("kite %s/%d: no tokens left; closing", self.name, number)
        for number, modes in self._plan.items():
            if number in running:
                continue
            status = self.statuses.setdefault(number, ConnectionStatus(number))
            connection = KiteConnection(
                f"{self.name}/{number}", url, self._config, self._on_ticks, status,
                self._clock, self._metrics, on_open,
            )  # fmt: skip
            connection.want(modes)
            self._open[number] = connection
            running[number] = asyncio.create_task(connection.run(), name=connection.name)

    async def _until_change(self, running: Mapping[int, asyncio.Task[None]]) -> None:
        """Wait for a new plan; a connection that ends raises its reason here."""
        replanned = asyncio.create_task(self._replanned.wait())
        try:
            done, _ = await asyncio.wait(
                {replanned, *running.values()}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            replanned.cancel()
        for task in done:
            if task is not replanned:
                task.result()  # SessionRefusedError, or a bug in a tick handler
                raise RuntimeError(f"kite connection {task.get_name()} ended")
