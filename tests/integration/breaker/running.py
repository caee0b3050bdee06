"""SharedBreakers running on the test's event loop, each on a client of its own.

Every client carries a unique ``client_name``, so a test can find the breaker's
connections (its pub/sub subscription included) in the server's ``CLIENT LIST``.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any

import redis.asyncio as aioredis

from tickfleet.breaker import BreakerConfig, SharedBreaker
from tickfleet.runtime.connections import fail_fast_async_client

NAME = "publish"


def named_client(url: str, timeout: float = 0.5) -> tuple[aioredis.Redis, str]:
    """A fail-fast client whose every connection announces a unique name."""
    name = f"breaker-test-{uuid.uuid4().hex[:12]}"
    return fail_fast_async_client(f"{url}?client_name={name}", timeout), name


async def connections(client: aioredis.Redis, name: str) -> list[dict[str, Any]]:
    """The server's ``CLIENT LIST`` entries of the connections named ``name``."""
    return [entry for entry in await client.client_list() if entry.get("name") == name]


def subscribed(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry.get("sub", "0") != "0"]


async def until_subscribed(
    client: aioredis.Redis, name: str, timeout: float = 5.0
) -> dict[str, Any]:
    """Wait until one of ``name``'s connections is subscribed; return its entry."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subscribed(await connections(client, name))
        if found:
            return found[0]
        await asyncio.sleep(0.005)
    raise AssertionError(f"no connection of {name} subscribed within {timeout}s")


@asynccontextmanager
async def running(breaker: SharedBreaker) -> AsyncIterator[SharedBreaker]:
    """``breaker`` synced once and running until the block ends, then cancelled; ``run`` must
    end within 10 s (a hang fails with its stack instead of waiting for the test timeout)."""
    await breaker.sync_once()
    task = asyncio.create_task(breaker.run())
    try:
        yield breaker
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=10)
        assert task.done(), f"run() still going 10 s after cancellation:\n{stack_of(task)}"
        if not task.cancelled():
            task.result()  # raises what run() raised


def stack_of(task: asyncio.Task[None]) -> str:
    text = io.StringIO()
    task.print_stack(file=text)
    return text.getvalue()


@asynccontextmanager
async def shared_breaker(
    url: str, config: BreakerConfig, *, timeout: float = 0.5, **options: Any
) -> AsyncIterator[SharedBreaker]:
    """A running SharedBreaker, already subscribed to its channel if the store answers (so
    no transition can slip by unheard); its client is closed once the breaker stopped."""
    client, name = named_client(url, timeout)
    try:
        async with running(SharedBreaker(client, NAME, config, **options)) as breaker:
            if breaker.source == "shared":  # an unreachable store has nothing to subscribe to
                await until_subscribed(client, name)
            yield breaker
    finally:
        await client.aclose()


class Fleet:
    """Breakers named "publish" joining one store; all stopped when the block ends."""

    def __init__(self, url: str, config: BreakerConfig, timeout: float = 0.5) -> None:
        self._url = url
        self._config = config
        self._timeout = timeout
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def join(self, config: BreakerConfig | None = None, **options: Any) -> SharedBreaker:
        context = shared_breaker(
            self._url, config or self._config, timeout=self._timeout, **options
        )
        return await self._stack.enter_async_context(context)
