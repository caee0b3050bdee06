"""A hot standby: a stream task that finds the lease held waits beside it, ready to take over.

Without one, a SIGKILLed owner left its stream silent for 6.4 to 8 s: the lease TTL,
then the watchdog's next pass, the start task's dispatch and the stream's start, one
after the other. A standby already runs in a pool process on another worker with its
clients open and tries the lease every ``POLL_SECONDS``, so the gap is the TTL's
remainder plus one poll and the stream's own start (see ``docs/architecture/flows.md``).

One standby per stream: it names itself in a marker ("<worker hostname> <owner>") whose
short TTL it renews at every poll, so ``/health`` and the launcher see it and a dead
standby's marker lapses by itself. It ends, without streaming, when:

- the owner runs on its own worker (one SIGKILL would take both: useless there);
- the marker names something else: the launcher asked it to stand down (a stream
  without an owner needs its pool slot) or another standby took its place;
- its worker shuts down (a signal, or ``Shutdown`` on the control channel), or the
  worker process that started it is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any, Literal

import redis
import redis.asyncio as aioredis

from tickfleet.assignment import channel as control
from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import standby_marker
from tickfleet.stream.control_listener import ControlListener
from tickfleet.stream.lease_keeper import LeaseKeeper

log = logging.getLogger("tickfleet.stream")

POLL_SECONDS = 0.1
MARKER_TTL_SECONDS = 2.0

# Renew the marker only while it still names this standby; 0: it names someone else.
_RENEW_MARKER = """
local marker = redis.call('GET', KEYS[1])
if marker == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not marker then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""

Outcome = Literal["took over", "stood down", "stopped"]


class Standby:
    def __init__(
        self,
        client: aioredis.Redis,
        keys: Keys,
        stream: str,
        hostname: str,
        keeper: LeaseKeeper,
    ) -> None:
        self._client = client
        self._keys = keys
        self._stream = stream
        self._hostname = hostname
        self._keeper = keeper
        self._marker = keys.stream_standby(stream)
        self._me = standby_marker(hostname, keeper.lease.owner)
        self._ttl_ms = int(MARKER_TTL_SECONDS * 1000)
        self._renew: Any = client.register_script(_RENEW_MARKER)
        self._stopped = asyncio.Event()
        self._parent = os.getppid()

    def stop(self) -> None:
        self._stopped.set()

    async def claim(self) -> bool:
        """Become the stream's standby, unless it has one or its owner runs here."""
        if await self._owner_here():
            log.info("stream %s: its owner runs on this worker; no standby here", self._stream)
            return False
        if not await self._client.set(self._marker, self._me, nx=True, px=self._ttl_ms):
            return False
        log.info("stream %s: standing by on %s", self._stream, self._hostname)
        return True

    async def wait(self) -> Outcome:
        """Poll for the lease until it is ours, or until this standby has to end."""
        listener = ControlListener(
            self._client, self._keys.control_channel, self._on_control, _nothing, 60.0
        )
        listening = asyncio.create_task(listener.run())
        try:
            return await self._poll()
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    async def _poll(self) -> Outcome:
        while not self._stopped.is_set():
            if os.getppid() != self._parent:
                return "stopped"
            try:
                outcome = await self._step()
            except (redis.RedisError, OSError) as exc:
                log.warning("stream %s: standby cannot reach Redis: %s", self._stream, exc)
            else:
                if outcome is not None:
                    return outcome
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), POLL_SECONDS)
        return "stopped"

    async def _step(self) -> Outcome | None:
        """One poll: take the lease if it is free, else renew the marker and look again."""
        if await self._keeper.acquire():
            await self._client.delete(self._marker)
            return "took over"
        renewed = int(await self._renew(keys=[self._marker], args=[self._me, self._ttl_ms]))
        if not renewed or await self._owner_here():
            return "stood down"
        return None

    async def release(self) -> None:
        """Leave the marker to nobody, if it still names this standby."""
        try:
            if await self._client.get(self._marker) == self._me.encode():
                await self._client.delete(self._marker)
        except (redis.RedisError, OSError) as exc:
            log.warning("stream %s: standby marker left to lapse: %s", self._stream, exc)

    async def _owner_here(self) -> bool:
        """The lease holder is a stream of this worker, as its status says."""
        pipe = self._client.pipeline(transaction=False)
        pipe.get(self._keys.stream_lease(self._stream))
        pipe.hmget(self._keys.stream_status(self._stream), ["owner", "hostname"])
        holder, (owner, hostname) = await pipe.execute()
        return holder is not None and holder == owner and hostname == self._hostname.encode()

    async def _on_control(self, message: control.Message) -> None:
        if isinstance(message, control.Shutdown) and message.targets(self._hostname, self._stream):
            self.stop()


async def _nothing() -> None:
    """The standby follows no assignment: it has nothing to poll besides the lease."""
