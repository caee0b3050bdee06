"""Listens on the control channel, with periodic polling as the backstop for missed messages."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis

from tickfleet import control

log = logging.getLogger("tickfleet.stream")

Handler = Callable[[control.Message], Awaitable[None]]
Poll = Callable[[], Awaitable[None]]


class ControlListener:
    def __init__(
        self, client: aioredis.Redis, channel: str, handle: Handler, poll: Poll, poll_every: float
    ) -> None:
        self._client = client
        self._channel = channel
        self._handle = handle
        self._poll = poll
        self._poll_every = poll_every

    async def run(self) -> None:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(self._channel)
        try:
            await self._poll()  # anything announced before we subscribed
            last_poll = time.monotonic()
            while True:
                raw = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if raw is not None:
                    await self._dispatch(raw["data"])
                if time.monotonic() - last_poll >= self._poll_every:
                    await self._poll()
                    last_poll = time.monotonic()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _dispatch(self, data: bytes) -> None:
        message = control.decode(data)
        if message is None:
            log.warning("ignored a malformed control message: %r", data[:200])
            return
        await self._handle(message)
