"""The API's writes take turns on one worker thread, and concurrent subscribes share one.

A write is a few milliseconds of database and Redis work in synchronous code, so it runs
off the event loop. Run in anyio's default pool of 40 threads, 50 concurrent POSTs made
40 threads fight for the interpreter lock while one of them held SQLite's single write
slot: the holder waited for the lock after every statement, and p99 reached seconds.
With one slot, each write runs straight through while the event loop parses the next
requests.

Subscribes go further (``Batches``): the POSTs that arrive while a write runs are written
together next, in one transaction with one registry lookup, one Redis PING, one round
of events and one reload request (``Desk.subscribe_each``), each still admitted or
refused on its own. Under load a batch holds about as many requests as there are
clients waiting; alone, a request is a batch of one. The reload request, a Redis round
trip after the commit, runs beside the next batch's write rather than before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial
from typing import Generic, TypeVar

import anyio.to_thread
import redis

from producers.api.reloads import request_reload
from producers.api.schemas import ReloadInfo
from tickfleet.control.reload import ReloadCoordinator
from tickfleet.subscriptions.admission import Rejection
from tickfleet.subscriptions.desk import Subscribed
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741 - an item
O = TypeVar("O")  # noqa: E741 - its outcome

Subscribing = tuple[Subscribed | list[Rejection], ReloadInfo]


class Writes:
    """Runs synchronous write work on a worker thread, one call at a time, Redis first.

    Every write asks Redis before it changes anything (``redis_first``): a database change
    committed before Redis turned out to be gone would leave a change nobody reloaded and
    no event sent, where asking first turns an outage into a 503 with nothing written.
    (Redis dying between the PING and the reload request still leaves the committed
    change as the truth: the watchdog reloads it.) The admin routes, whose actions are
    Redis calls rather than writes on this slot, ask the same way (``deps.RedisUp``).
    """

    def __init__(self, probe: redis.Redis) -> None:
        self._slot = anyio.CapacityLimiter(1)
        self._probe = probe  # fail-fast: one bounded PING, no retries

    def redis_first(self) -> None:
        """One bounded PING; raises (answered 503 by ``producers.api.errors``) if Redis is
        unavailable."""
        self._probe.ping()

    async def run(self, work: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(self._checked, work, limiter=self._slot)

    def _checked(self, work: Callable[[], T]) -> T:
        self.redis_first()
        return work()


Then = Callable[[], list[O]]
"""What is left of a batch once its write is done: the work after it, which no longer
needs the write slot, giving one outcome per item."""


class Batches(Generic[I, O]):
    """Concurrent calls gathered into one call of ``work`` on the write slot.

    ``work`` takes the items in arrival order, writes them, and returns what is left to do
    (``Then``); that part runs on a slot of its own, batch after batch in order, while the
    write slot takes the next batch. If either part raises, every caller of that batch
    gets the exception (one transaction: if the write raised, nothing was written).
    """

    def __init__(self, writes: Writes, work: Callable[[list[I]], Then[O]]) -> None:
        self._writes = writes
        self._after = anyio.CapacityLimiter(1)  # the work after a write, batch after batch
        self._work = work
        self._waiting: list[tuple[I, asyncio.Future[O]]] = []
        self._drain: asyncio.Task[None] | None = None
        self._finishing: set[asyncio.Task[None]] = set()

    async def submit(self, item: I) -> O:
        future: asyncio.Future[O] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                then = await self._writes.run(partial(self._work, [item for item, _ in batch]))
            except Exception as exc:  # handed to every caller, who answers with it
                _fail(batch, exc)
                continue
            finishing = asyncio.create_task(self._finish(batch, then))
            self._finishing.add(finishing)  # held until done: the loop keeps weak references
            finishing.add_done_callback(self._finishing.discard)

    async def _finish(self, batch: list[tuple[I, asyncio.Future[O]]], then: Then[O]) -> None:
        try:
            outcomes = await anyio.to_thread.run_sync(then, limiter=self._after)
        except Exception as exc:
            _fail(batch, exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)


def _fail(batch: Sequence[tuple[object, asyncio.Future[O]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


Subscribes = Batches[list[SubscriptionRequest], Subscribing]
"""The API's one ``Batches`` of subscribe requests (``app.state.subscribes``)."""


def subscribe_batch(
    services: Services,
    coordinator: ReloadCoordinator,
    batch: Sequence[Sequence[SubscriptionRequest]],
) -> Then[Subscribing]:
    """The write of concurrent POSTs (after the slot's one PING for the batch): every
    request in one transaction and its events; after it, off the write slot, one reload
    request for all (a Redis round trip the next batch's write need not wait for)."""
    now = services.hours.at(services.clock.time())
    outcomes = services.desk().subscribe_each(batch, now)
    written = sum(len(o.saved) for o in outcomes if isinstance(o, Subscribed))

    def then() -> list[Subscribing]:
        reload = (
            request_reload(coordinator, f"subscribe {written} tokens")
            if written
            else ReloadInfo(requested=False)
        )
        return [(outcome, reload) for outcome in outcomes]

    return then
