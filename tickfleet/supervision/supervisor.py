"""A supervisor: the named coroutines of one stream, each restarted by its own policy.

A stream is several coroutines (feed, control listener, lease heartbeat, publisher
flush) that are only useful together. Each runs under the task monitor, so every
failure is reported there; the supervisor only decides what happens next (see
``policy``). When a coroutine must not go on, ``run`` cancels all the others and raises
``SupervisorFailed``, so the stream task ends visibly instead of limping on with a dead
heartbeat or feed. ``run`` returns normally once every coroutine has finished or after
``stop``. Coroutines are added before ``run``. All methods are for the event loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tickfleet.supervision.cancel import cancel_and_wait
from tickfleet.supervision.failures import TaskFailure
from tickfleet.supervision.monitor import OnError, TaskMonitor
from tickfleet.supervision.policy import RestartBudget, RestartPolicy, Rng

Factory = Callable[[], Awaitable[None]]
Runner = asyncio.Task["SupervisorFailed | None"]


class SupervisorFailed(Exception):  # noqa: N818 - the name the stream code is specified with
    """A coroutine failed in a way its policy does not absorb; ``failure`` says which."""

    def __init__(self, failure: TaskFailure, reason: str = "failed") -> None:
        super().__init__(f"{failure.task} {reason}: {failure.exc_type}: {failure.message}")
        self.failure = failure
        self.reason = reason


@dataclass(slots=True)
class _Child:
    name: str
    factory: Factory
    policy: RestartPolicy
    budget: RestartBudget = field(init=False)
    restarts: int = 0

    def __post_init__(self) -> None:
        self.budget = RestartBudget(self.policy)


class _Capture:
    """``on_error`` hook that keeps the failure for the supervisor, then calls the owner's."""

    def __init__(self, on_error: OnError | None) -> None:
        self.on_error = on_error
        self.failure: TaskFailure | None = None

    def __call__(self, exc: Exception, failure: TaskFailure) -> Awaitable[None] | None:
        self.failure = failure
        return None if self.on_error is None else self.on_error(exc, failure)


async def _call(factory: Factory) -> None:
    # Inside the monitored coroutine, so a factory that raises is a reported failure too.
    await factory()


class Supervisor:
    """Runs named coroutines under a ``TaskMonitor``, each with its ``RestartPolicy``.

    ``on_error`` is called for every failure of any of them (the monitor's hook).
    """

    def __init__(
        self,
        monitor: TaskMonitor,
        name: str,
        *,
        on_error: OnError | None = None,
        rng: Rng | None = None,
        stop_timeout: float = 5.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self._monitor = monitor
        self._on_error = on_error
        self._rng = rng or random.Random()
        self._stop_timeout = stop_timeout
        self._log = logger or logging.getLogger(__name__)
        self._children: dict[str, _Child] = {}
        self._runners: set[Runner] = set()
        # Finished runners, and None when stop() wants run() to wake up; set while run() runs.
        self._finished: asyncio.Queue[Runner | None] | None = None
        self._started = False
        self._stopped = False

    def supervise(self, name: str, factory: Factory, policy: RestartPolicy) -> None:
        """Add a coroutine, to start when ``run`` does."""
        if self._started:
            raise RuntimeError(f"supervisor {self.name} is running: add coroutines before")
        if name in self._children:
            raise ValueError(f"supervisor {self.name} already supervises {name!r}")
        self._children[name] = _Child(name, factory, policy)

    def restarts(self, name: str) -> int:
        return self._children[name].restarts

    async def run(self) -> None:
        """Run every supervised coroutine until all finished, ``stop``, or a failure."""
        if self._started:
            raise RuntimeError(f"supervisor {self.name} runs only once")
        self._started = True
        finished: asyncio.Queue[Runner | None] = asyncio.Queue()
        self._finished = finished
        if not self._stopped:
            for child in self._children.values():
                self._start(child, finished)
        try:
            while self._runners and not self._stopped:
                self._collect(await finished.get())
        finally:
            self._finished = None
            await self._cancel_all()

    def stop(self) -> None:
        """Cancel every coroutine; ``run`` returns normally once they are gone (or stuck).

        Called before ``run``, it makes ``run`` return at once.
        """
        self._stopped = True
        if self._finished is not None:
            self._finished.put_nowait(None)

    def _start(self, child: _Child, finished: asyncio.Queue[Runner | None]) -> None:
        runner = asyncio.get_running_loop().create_task(
            self._supervise(child), name=f"{self.name}/{child.name}"
        )
        self._runners.add(runner)
        runner.add_done_callback(finished.put_nowait)

    def _collect(self, runner: Runner | None) -> None:
        if runner is None:
            return
        self._runners.discard(runner)
        if runner.cancelled():
            return
        verdict = runner.result()
        if verdict is not None:
            self._log.error(
                "supervisor %s failed: %s; cancelling %d coroutine(s)",
                self.name,
                verdict,
                len(self._runners),
                extra={"tf_supervisor": self.name, "tf_task": verdict.failure.task},
            )
            raise verdict

    async def _cancel_all(self) -> None:
        runners, self._runners = self._runners, set()
        stuck = await cancel_and_wait(runners, self._stop_timeout)
        for runner in stuck:
            self._log.warning(
                "supervisor %s: %s ignored cancellation for %.1fs; left behind",
                self.name,
                runner.get_name(),
                self._stop_timeout,
            )

    async def _supervise(self, child: _Child) -> SupervisorFailed | None:
        while True:
            failure = await self._run_once(child)
            if failure is None:
                return None  # returned normally: finished
            step = self._after_failure(child, failure)
            if isinstance(step, SupervisorFailed):
                return step
            await asyncio.sleep(step)
            child.restarts += 1

    async def _run_once(self, child: _Child) -> TaskFailure | None:
        capture = _Capture(self._on_error)
        try:
            await self._monitor.run(
                _call(child.factory), child.name, capture, restarts=child.restarts
            )
        except Exception:
            if capture.failure is None:  # reporting itself broke: let run() raise it
                raise
            return capture.failure
        return None

    def _after_failure(self, child: _Child, failure: TaskFailure) -> float | SupervisorFailed:
        policy = child.policy
        if policy.on_failure == "fail":
            return SupervisorFailed(failure, "failed (policy fail)")
        attempt = child.budget.spend(self._monitor.clock.monotonic())
        if attempt is None:
            reason = f"failed more than {policy.max_restarts} times in {policy.window_seconds:g}s"
            return SupervisorFailed(failure, reason)
        delay = policy.delay(attempt, self._rng)
        self._log.warning(
            "restarting %s in %.2fs (attempt %d/%d)",
            child.name,
            delay,
            attempt,
            policy.max_restarts,
            extra={"tf_supervisor": self.name, "tf_task": child.name},
        )
        return delay
