"""Live ticks for many browsers from one Redis subscription per process.

A browser watching the chain (``/chain``) must not cost Redis a subscription: fifty
browsers on one API process would be fifty connections each receiving every tick. So each
process holds one subscription to the tick channels, started by its first watcher and
dropped ``idle_seconds`` after its last, and hands every watcher the same ``Frame``
every ``frame_seconds``: the latest tick of each token that ticked since the last frame
(conflated, as a chain only shows the latest), the underlying's latest, and the fleet's
status when it was read again. A watcher that falls more than one frame behind is told to
resync (reload the chain) instead of being queued for: memory stays one frame per process.
At most ``max_watchers`` hold a ``Seat`` at once (``admit``), counted when admitted.

A lost or silent subscription (Redis stopped, restarted or frozen) is reported through
the failure reporter (logged, counted, in ``/health``), told to watchers as
``connected=False`` with ``resync``, and made again after a pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from tickfleet.chain.option_chain import Tick
from tickfleet.ticks.channels import Channels
from tickfleet.ticks.subscription import AsyncTickListener

Report = Callable[[Exception], object]


class SilentFeedError(ConnectionError):
    """The subscription answered nothing, not even a PING, for too long."""


@dataclass(frozen=True, slots=True)
class FanoutConfig:
    frame_seconds: float = 0.25
    status_seconds: float = 2.0
    idle_seconds: float = 10.0
    ping_seconds: float = 2.0
    silence_seconds: float = 6.0
    retry_seconds: float = 1.0
    max_watchers: int = 200


@dataclass(frozen=True, slots=True)
class Frame:
    """What every watcher is sent at one instant."""

    seq: int
    options: list[Tick] = field(default_factory=list)  # the latest of each that ticked
    underlying: Tick | None = None  # its latest tick, if it ticked since the last frame
    status: dict[str, Any] | None = None
    connected: bool = True  # the subscription is up (False: lost, being made again)
    resync: bool = False
    # What watchers derive from the frame alike (every page of one expiry sends the same
    # event): made by the first watcher that needs it, reused by the rest.
    shared: dict[Any, Any] = field(default_factory=dict, compare=False)


class Seat:
    """One admitted watcher's place, held from ``TickFanout.admit`` until released (once:
    releasing again does nothing)."""

    __slots__ = ("_leave",)

    def __init__(self, leave: Callable[[], None]) -> None:
        self._leave: Callable[[], None] | None = leave

    def release(self) -> None:
        leave, self._leave = self._leave, None
        if leave is not None:
            leave()


class TickFanout:
    """One subscription to the option, underlying and event channels, many watchers."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[AsyncTickListener]],
        channels: Channels,
        status: Callable[[], dict[str, Any]],
        report: Report,
        config: FanoutConfig | None = None,
    ) -> None:
        self._connect = connect
        self._channels = channels
        self._read_status = status
        self._report = report
        self.config = config or FanoutConfig()
        self._frame = Frame(0, connected=False)
        self._changed = asyncio.Condition()
        self._options: dict[int, Tick] = {}
        self._underlying: Tick | None = None
        self._status: dict[str, Any] | None = None
        self._resync = False
        self._watchers = 0
        self._task: asyncio.Task[None] | None = None
        self.subscribed = False

    @property
    def watchers(self) -> int:
        """Seats taken: admitted watchers, whether or not they read a frame yet."""
        return self._watchers

    @property
    def max_watchers(self) -> int:
        """How many watchers ``admit`` lets in at once."""
        return self.config.max_watchers

    @property
    def status(self) -> dict[str, Any] | None:
        """The fleet's status as last read for the watchers (None before the first read)."""
        return self._status

    def admit(self) -> Seat | None:
        """A seat for one more watcher, or None when ``max_watchers`` hold one.

        The count is tested and taken in one step with no await between, so a burst of
        requests on the event loop cannot all pass the test before any takes a seat
        (counting only once a watcher read its first frame let 70 of 70 in under a cap
        of 50). The subscription starts with the first seat.
        """
        if self._watchers >= self.config.max_watchers:
            return None
        self._watchers += 1
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="fanout")
        return Seat(self._leave)

    def _leave(self) -> None:
        self._watchers -= 1

    async def watch(self, seat: Seat) -> AsyncGenerator[Frame, None]:
        """Every frame from now on, until the caller stops iterating; then ``seat`` is
        released (its holder may also release it earlier, e.g. when never iterated)."""
        seen = self._frame.seq
        try:
            while True:
                async with self._changed:
                    while self._frame.seq <= seen:
                        await self._changed.wait()
                frame = self._frame
                if frame.seq > seen + 1 and not frame.resync:
                    frame = replace(frame, options=[], resync=True, shared={})
                seen = frame.seq
                yield frame
        finally:
            seat.release()

    async def aclose(self) -> None:
        """Drop the subscription now (the owner's shutdown)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- the subscription ---------------------------------------------------------------

    async def _run(self) -> None:
        status = asyncio.get_running_loop().create_task(self._status_loop(), name="fanout/status")
        try:
            while self._watchers:
                try:
                    await self._listen()
                except Exception as exc:  # every failure is reported, then retried
                    self.subscribed = False
                    self._report(exc)
                    await self._emit(connected=False, resync=True)
                    await asyncio.sleep(self.config.retry_seconds)
        finally:
            self.subscribed = False
            status.cancel()
            await asyncio.gather(status, return_exceptions=True)
            if self._watchers and self._task is asyncio.current_task():
                # a watcher came as the subscription was being dropped: make it again
                self._task = asyncio.get_running_loop().create_task(self._run(), name="fanout")

    async def _listen(self) -> None:
        """Subscribe, then frame what arrives until nobody has watched for ``idle_seconds``."""
        config, loop = self.config, asyncio.get_running_loop()
        listener = await self._connect()
        try:
            c = self._channels
            await listener.subscribe(c.options, c.underlying, c.events)
            self.subscribed = True
            self._resync = True  # whatever happened while not subscribed is unknown
            now = loop.time()
            next_frame, next_ping, heard, idle_since = now, now, now, now
            while self._watchers or now - idle_since < config.idle_seconds:
                message = await listener.get(timeout=max(0.0, next_frame - now))
                now = loop.time()
                if message is not None:
                    heard = now
                    self._take(*message)
                if self._watchers:
                    idle_since = now
                if now >= next_frame:
                    await self._emit(connected=True)
                    next_frame = now + config.frame_seconds
                if now >= next_ping:
                    if now - heard > config.silence_seconds:
                        raise SilentFeedError(f"no reply from Redis for {now - heard:.1f} s")
                    if await listener.ping():
                        heard = now
                    next_ping = now + config.ping_seconds
        finally:
            self.subscribed = False
            await listener.aclose()

    def _take(self, channel: str, data: bytes) -> None:
        if not channel:
            return  # a PONG or a confirmation: heard, but no tick
        if channel == self._channels.events:
            self._resync = True  # a token joined or left: the chain's rows change
            return
        tick = orjson.loads(data)
        if channel == self._channels.options:
            self._options[int(tick["instrument_token"])] = tick
        else:
            self._underlying = tick

    async def _emit(self, *, connected: bool, resync: bool = False) -> None:
        options, self._options = list(self._options.values()), {}
        underlying, self._underlying = self._underlying, None
        frame = Frame(
            self._frame.seq + 1,
            options,
            underlying,
            self._status,
            connected,
            resync or self._resync,
        )
        self._resync = False
        async with self._changed:
            self._frame = frame
            self._changed.notify_all()

    async def _status_loop(self) -> None:
        """Read the fleet's status in a thread every ``status_seconds`` (it reads SQL)."""
        while True:
            try:
                self._status = await asyncio.to_thread(self._read_status)
            except Exception as exc:  # reported; the last status stays until the next read
                self._report(exc)
            await asyncio.sleep(self.config.status_seconds)
