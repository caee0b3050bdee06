"""Live ticks for many browsers from one Redis subscription per watched underlying.

A browser watching the chain (``/chain``) must not cost Redis a subscription: fifty
browsers on one API process would be fifty connections each receiving every tick. So each
process holds one subscription per underlying that has watchers (its option, index and
event channels), started by that underlying's first watcher and dropped ``idle_seconds``
after its last, and hands each of its watchers the same ``Frame`` every
``frame_seconds``: the latest tick of each token that ticked since the last frame
(conflated, as a chain only shows the latest), the index's latest, and the fleet's status
when it was read again. A watcher that falls more than one frame behind is told to resync
(reload the chain) instead of being queued for: memory stays one frame per underlying.

Subscriptions are per underlying, not one for all, because a page shows one underlying:
NIFTY's and SENSEX's options may share an expiry date, and a frame of both would merge two
chains (or make every page filter every tick it is not shown). On a Redis Cluster each
underlying's sharded channels sit on their own shard anyway, and an underlying nobody
watches costs nothing. At most ``max_watchers`` hold a ``Seat`` at once, counted across
every underlying when admitted; the fleet's status is read once per process, not per
underlying.

A lost or silent subscription (Redis stopped, restarted or frozen) is reported through
the failure reporter (logged, counted, in ``/health``), told to its watchers as
``connected=False`` with ``resync``, and made again after a pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import orjson

from tickfleet.chain.option_chain import Tick
from tickfleet.ticks.channels import Channels

Report = Callable[[Exception], object]


class SilentFeedError(ConnectionError):
    """The subscription answered nothing, not even a PING, for too long."""


class Listener(Protocol):
    """What the fan-out needs of a subscription (``tickfleet.ticks.subscription``'s
    ``AsyncTickListener``, on one Redis or a cluster)."""

    async def subscribe(self, *channels: str) -> None: ...
    async def get(self, timeout: float) -> tuple[str, bytes] | None: ...
    async def ping(self) -> bool: ...
    async def aclose(self) -> None: ...


Connect = Callable[[], Awaitable[Listener]]


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
    """What every watcher of one underlying is sent at one instant."""

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
    """One admitted watcher's place on one underlying's subscription, held from
    ``TickFanout.admit`` until released (once: releasing again does nothing)."""

    __slots__ = ("_leave", "_subscription")

    def __init__(self, subscription: _Subscription, leave: Callable[[], None]) -> None:
        self._subscription = subscription
        self._leave: Callable[[], None] | None = leave

    def release(self) -> None:
        leave, self._leave = self._leave, None
        if leave is not None:
            leave()


class TickFanout:
    """Many watchers, one subscription per underlying watched, one cap for them all."""

    def __init__(
        self,
        connect: Connect,
        status: Callable[[], dict[str, Any]],
        report: Report,
        config: FanoutConfig | None = None,
    ) -> None:
        self._connect = connect
        self._read_status = status
        self._report = report
        self.config = config or FanoutConfig()
        self._subscriptions: dict[Channels, _Subscription] = {}
        self._watchers = 0
        self._status: dict[str, Any] | None = None
        self._status_task: asyncio.Task[None] | None = None

    @property
    def watchers(self) -> int:
        """Seats taken, of every underlying: admitted watchers, whether or not they read a
        frame yet."""
        return self._watchers

    @property
    def max_watchers(self) -> int:
        """How many watchers ``admit`` lets in at once, of all underlyings together."""
        return self.config.max_watchers

    @property
    def status(self) -> dict[str, Any] | None:
        """The fleet's status as last read for the watchers (None before the first read)."""
        return self._status

    @property
    def subscriptions(self) -> frozenset[Channels]:
        """The underlyings (by their channels) with a subscription held or being made: each
        watched now or within ``idle_seconds``."""
        return frozenset(self._subscriptions)

    @property
    def subscribed(self) -> frozenset[Channels]:
        """The underlyings whose subscription is up now."""
        return frozenset(c for c, s in self._subscriptions.items() if s.subscribed)

    def admit(self, channels: Channels) -> Seat | None:
        """A seat for one more watcher of the underlying of ``channels``, or None when
        ``max_watchers`` (of every underlying) hold one.

        The count is tested and taken in one step with no await between, so a burst of
        requests on the event loop cannot all pass the test before any takes a seat
        (counting only once a watcher read its first frame let 70 of 70 in under a cap
        of 50). The underlying's subscription starts with its first seat.
        """
        if self._watchers >= self.config.max_watchers:
            return None
        self._watchers += 1
        subscription = self._subscriptions.get(channels)
        if subscription is None:
            subscription = _Subscription(
                self._connect, channels, self._frame_status, self._report, self.config, self._forget
            )
            self._subscriptions[channels] = subscription
        subscription.join()
        if self._status_task is None or self._status_task.done():
            loop = asyncio.get_running_loop()
            self._status_task = loop.create_task(self._status_loop(), name="fanout/status")
        return Seat(subscription, lambda: self._leave(subscription))

    def _leave(self, subscription: _Subscription) -> None:
        self._watchers -= 1
        subscription.leave()

    def _forget(self, subscription: _Subscription) -> None:
        """The subscription ended with nobody watching: the next watcher makes a new one."""
        if self._subscriptions.get(subscription.channels) is subscription:
            del self._subscriptions[subscription.channels]

    def _frame_status(self) -> dict[str, Any] | None:
        return self._status

    async def watch(self, seat: Seat) -> AsyncGenerator[Frame, None]:
        """Every frame of the seat's underlying from now on, until the caller stops
        iterating; then ``seat`` is released (its holder may also release it earlier, e.g.
        when never iterated)."""
        try:
            async with aclosing(seat._subscription.frames()) as frames:
                async for frame in frames:
                    yield frame
        finally:
            seat.release()

    async def aclose(self) -> None:
        """Drop every subscription now (the owner's shutdown)."""
        subscriptions = list(self._subscriptions.values())
        status, self._status_task = self._status_task, None
        if status is not None:
            status.cancel()
        await asyncio.gather(*(s.aclose() for s in subscriptions))
        if status is not None:
            await asyncio.gather(status, return_exceptions=True)

    async def _status_loop(self) -> None:
        """Read the fleet's status in a thread every ``status_seconds`` (it reads SQL),
        while any underlying's subscription is held."""
        while self._subscriptions:
            try:
                self._status = await asyncio.to_thread(self._read_status)
            except Exception as exc:  # reported; the last status stays until the next read
                self._report(exc)
            await asyncio.sleep(self.config.status_seconds)


class _Subscription:
    """One underlying's subscription to its option, index and event channels, and the
    frames its watchers share."""

    def __init__(
        self,
        connect: Connect,
        channels: Channels,
        status: Callable[[], dict[str, Any] | None],
        report: Report,
        config: FanoutConfig,
        ended: Callable[[_Subscription], None],
    ) -> None:
        self._connect = connect
        self._ended = ended  # told when the subscription ends with nobody watching
        self.channels = channels
        self._status = status
        self._report = report
        self.config = config
        self._frame = Frame(0, connected=False)
        self._changed = asyncio.Condition()
        self._options: dict[int, Tick] = {}
        self._underlying: Tick | None = None
        self._resync = False
        self._task: asyncio.Task[None] | None = None
        self.watchers = 0
        self.subscribed = False

    def join(self) -> None:
        """One more watcher; the first makes the subscription."""
        self.watchers += 1
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            name = f"fanout/{self.channels.prefix}"
            self._task = loop.create_task(self._run(), name=name)

    def leave(self) -> None:
        """One watcher fewer; the last one's leaving ends the subscription once idle."""
        self.watchers -= 1

    async def frames(self) -> AsyncGenerator[Frame, None]:
        seen = self._frame.seq
        while True:
            async with self._changed:
                while self._frame.seq <= seen:
                    await self._changed.wait()
            frame = self._frame
            if frame.seq > seen + 1 and not frame.resync:
                frame = replace(frame, options=[], resync=True, shared={})
            seen = frame.seq
            yield frame

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        try:
            while self.watchers:
                try:
                    await self._listen()
                except Exception as exc:  # every failure is reported, then retried
                    self.subscribed = False
                    self._report(exc)
                    await self._emit(connected=False, resync=True)
                    await asyncio.sleep(self.config.retry_seconds)
        finally:
            # No await from the test of ``watchers`` to here: a watcher that came during
            # the last ``_listen`` kept the loop going; none can come in between.
            self.subscribed = False
            self._ended(self)

    async def _listen(self) -> None:
        """Subscribe, then frame what arrives until nobody has watched for ``idle_seconds``."""
        config, loop = self.config, asyncio.get_running_loop()
        listener = await self._connect()
        try:
            c = self.channels
            await listener.subscribe(c.options, c.underlying, c.events)
            self.subscribed = True
            self._resync = True  # whatever happened while not subscribed is unknown
            now = loop.time()
            next_frame, next_ping, heard, idle_since = now, now, now, now
            while self.watchers or now - idle_since < config.idle_seconds:
                message = await listener.get(timeout=max(0.0, next_frame - now))
                now = loop.time()
                if message is not None:
                    heard = now
                    self._take(*message)
                if self.watchers:
                    idle_since = now
                if now >= next_frame:
                    await self._emit(connected=True)
                    next_frame = now + config.frame_seconds
                if now >= next_ping:
                    if now - heard > config.silence_seconds:
                        silent = now - heard
                        raise SilentFeedError(f"{c.prefix}: no reply from Redis for {silent:.1f} s")
                    if await listener.ping():
                        heard = now
                    next_ping = now + config.ping_seconds
        finally:
            self.subscribed = False
            await listener.aclose()

    def _take(self, channel: str, data: bytes) -> None:
        if not channel:
            return  # a PONG or a confirmation: heard, but no tick
        if channel == self.channels.events:
            self._resync = True  # a token joined or left: the chain's rows change
            return
        tick = orjson.loads(data)
        if channel == self.channels.options:
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
            self._status(),
            connected,
            resync or self._resync,
        )
        self._resync = False
        async with self._changed:
            self._frame = frame
            self._changed.notify_all()
