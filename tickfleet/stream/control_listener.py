"""The control channel, with periodic polling as the backstop for missed messages, and the
assignment a stream follows through it.

A lost connection to the fleet's Redis (restart, network blip) is not a failure of the
stream: the listener resubscribes with a short backoff and polls once it is back, which
catches everything announced while it was away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
import redis
import redis.asyncio as aioredis

from tickfleet.assignment import channel as control
from tickfleet.assignment.plan import Assignment
from tickfleet.stream.feed import Feed
from tickfleet.stream.status import StreamStatus

log = logging.getLogger("tickfleet.stream")

Handler = Callable[[control.Message], Awaitable[None]]
Poll = Callable[[], Awaitable[None]]

RESUBSCRIBE_MAX_SECONDS = 2.0


class ControlListener:
    def __init__(
        self, client: aioredis.Redis, channel: str, handle: Handler, poll: Poll, poll_every: float
    ) -> None:
        self._client = client
        self._channel = channel
        self._handle = handle
        self._poll = poll
        self._poll_every = poll_every
        self._failures = 0  # consecutive failed subscriptions

    async def run(self) -> None:
        while True:
            try:
                await self._listen()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                self._failures += 1
                if self._failures == 1:
                    log.warning("control channel lost (%r); resubscribing", exc)
                await asyncio.sleep(min(RESUBSCRIBE_MAX_SECONDS, 0.1 * 2**self._failures))

    async def _listen(self) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            await self._poll()  # anything announced before we subscribed
            if self._failures:
                log.info("control channel back after %d attempts", self._failures)
                self._failures = 0
            last_poll = time.monotonic()
            while True:
                raw = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if raw is not None:
                    await self._dispatch(raw["data"])
                if time.monotonic() - last_poll >= self._poll_every:
                    await self._poll()
                    last_poll = time.monotonic()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]

    async def _dispatch(self, data: bytes) -> None:
        message = control.decode(data)
        if message is None:
            log.warning("ignored a malformed control message: %r", data[:200])
            return
        await self._handle(message)


class AssignmentFollower:
    """Applies the fleet's saved assignment to a feed whenever it is a new one.

    A missing assignment (an emptied Redis) is not an empty one: the feed keeps its
    tokens until the fleet saves an assignment again. Versions restart at 1 in an emptied
    Redis, so an assignment is known by its version and the time it was saved.
    """

    def __init__(self, client: aioredis.Redis, key: str, feed: Feed, status: StreamStatus) -> None:
        self._client = client
        self._key = key
        self._feed = feed
        self._status = status
        self._applied: Assignment | None = None

    async def sync(self) -> None:
        raw = await self._client.get(self._key)
        if raw is None:
            return
        assignment = Assignment.from_dict(orjson.loads(raw))
        if self._applied is not None and assignment.same_run(self._applied):
            return
        await self._feed.apply(assignment)
        self._applied = assignment
        self._status.assignment_version = assignment.version
        self._status.assignment_saved_at = assignment.saved_at
