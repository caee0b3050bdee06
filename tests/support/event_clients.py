"""Clients of the chain page's event stream, run as tasks until they heard enough."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import Any

Client = Coroutine[Any, Any, None]


@asynccontextmanager
async def running(clients: Iterable[Client]) -> AsyncIterator[list[asyncio.Task[None]]]:
    """The clients as tasks; leaving cancels and awaits every one, whatever happened."""
    tasks = [asyncio.create_task(client) for client in clients]
    try:
        yield tasks
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def until_heard(
    enough: Callable[[], bool],
    tasks: list[asyncio.Task[None]],
    timeout: float,
    shown: Callable[[], object],
) -> None:
    """Until ``enough()``; fails with ``shown()`` after ``timeout``, or at once when a client
    ended (a client only ends by failing)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not enough():
        assert loop.time() < deadline, shown()
        assert not any(t.done() for t in tasks), [t for t in tasks if t.done()]
        await asyncio.sleep(0.1)
