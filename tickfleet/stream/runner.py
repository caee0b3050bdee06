"""One stream's life: take the lease, run the supervised coroutines, always clean up.

Policies, declared once here: losing the lease fails the stream at once (another worker
owns it now); the feed, publisher, control listener and status reporter are restarted
with backoff, and a coroutine that keeps failing past its budget fails the stream, which
ends the Celery task visibly so the watchdog starts a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import redis

from tickfleet.clock import Clock
from tickfleet.monitor import RestartPolicy, Supervisor, SupervisorFailed, TaskMonitor
from tickfleet.stream.lease_keeper import LeaseKeeper
from tickfleet.stream.status import StreamStatus

log = logging.getLogger("tickfleet.stream")

FAIL = RestartPolicy(mode="fail")


def restart_policy(max_restarts: int) -> RestartPolicy:
    """Restart with backoff; more than ``max_restarts`` failures a minute fail the stream."""
    return RestartPolicy(mode="restart", max_restarts=max_restarts, window_seconds=60.0)


Report = Callable[[StreamStatus], None]
Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    factory: Callable[[], Awaitable[None]]
    policy: RestartPolicy | None = None  # None: the runner's restart policy


class StreamRunner:
    def __init__(
        self,
        name: str,
        keeper: LeaseKeeper,
        monitor: TaskMonitor,
        status: StreamStatus,
        parts: Sequence[Part],
        report: Report,
        clock: Clock,
        openers: Sequence[Hook] = (),
        closers: Sequence[Hook] = (),
        report_every: float = 1.0,
        restart: RestartPolicy | None = None,
    ) -> None:
        self.name = name
        self.keeper = keeper
        self.monitor = monitor
        self.status = status
        self.parts = list(parts)
        self._report = report
        self._clock = clock
        self._openers = list(openers)
        self._closers = list(closers)
        self._report_every = report_every
        self._restart = restart or restart_policy(5)
        self._supervisor: Supervisor | None = None
        self._stop_requested = False

    def stop(self) -> None:
        """Ask the stream to end cleanly (lease released, status written)."""
        self._stop_requested = True
        if self._supervisor is not None:
            self._supervisor.stop()

    async def run(self) -> str:
        self.monitor.install(asyncio.get_running_loop())
        if not await self.keeper.acquire():
            log.info("stream %s is held by another worker; exiting", self.name)
            await self._close()
            return "lease held elsewhere"
        log.info("stream %s started (owner %s)", self.name, self.keeper.lease.owner)
        self.status.started_at = self._clock.time()
        try:
            for open_part in self._openers:
                await open_part()
            return await self._supervise()
        except SupervisorFailed as exc:
            self.status.last_error = str(exc)
            raise
        finally:
            await self._shutdown()

    async def _supervise(self) -> str:
        supervisor = Supervisor(self.monitor, self.name)
        self._supervisor = supervisor
        supervisor.supervise("lease", self.keeper.run, FAIL)
        supervisor.supervise("status", self._report_forever, self._restart)
        for part in self.parts:
            supervisor.supervise(part.name, part.factory, part.policy or self._restart)
        if self._stop_requested:
            supervisor.stop()
        await supervisor.run()
        return "stopped"

    async def _report_forever(self) -> None:
        """Report every ``report_every`` seconds; an unreachable Redis skips reports."""
        unreachable = False
        while True:
            try:
                await asyncio.to_thread(self._report, self.status.copy())
            except redis.RedisError as exc:
                if not unreachable:
                    log.warning("stream %s: status not reported: %r", self.name, exc)
                unreachable = True
            else:
                unreachable = False
            await asyncio.sleep(self._report_every)

    async def _shutdown(self) -> None:
        await self.keeper.release()
        self.status.mode = "stopped"
        try:
            await asyncio.to_thread(self._report, self.status.copy())
        except Exception as exc:  # the status key lapses by itself
            log.warning("final status of %s not written: %s", self.name, exc)
        await self._close()
        log.info("stream %s ended (%s)", self.name, self.status.last_error or "clean")

    async def _close(self) -> None:
        for close in self._closers:
            try:
                await close()
            except Exception:
                log.exception("stream %s: cleanup step failed", self.name)
        await self.monitor.aclose()
