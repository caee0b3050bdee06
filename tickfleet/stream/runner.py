"""One stream as one asyncio program that owns everything it opens.

``StreamRunner.run`` opens the stream's parts in one ``AsyncExitStack`` and leaves them
in reverse order on every way out (a normal stop, a lost lease, a failure past the
restart budget, cancellation): the last status is written, the lease released, the last
failures and metrics written, then the three Redis clients closed. In between, one
supervisor runs the stream's coroutines on the one event loop:

    lease      renews the lease (a refused renewal, or a batch the fence refused, fails
               the stream: another worker has it)
    status     reports the stream to Redis every second, for /health
    publisher  sends ticks as soon as the connection is free, through the breaker,
               and hands each batch Redis took to the stream's archive recorder, whose
               thread (the one thread) writes them to disk (tickfleet.archive.recorder)
    breaker    keeps the fleet-shared breaker in step with the others
               (on a Redis Cluster, a publisher and a breaker per underlying:
               ``tickfleet.stream.publishing``)
    failures   writes failure records for /health
    metrics    flushes this stream's metrics
    bars       hands the stream's bars to Redis (tickfleet.history.bars)
    control    follows the assignment and the control channel
    feed       produces ticks (simulated or live, as the market hours say)

A stream task that finds the lease held stands by for it instead, if the stream has no
standby yet (``tickfleet.stream.standby``), and runs as above once it takes it.

Everything but the lease is restarted with backoff; more than ``restart_limit`` failures
of one of them in a minute fail the stream, which ends the Celery task visibly so the
watchdog starts a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass

import redis

from tickfleet.archive.recorder import RecorderConfig, Route, TickRecorder
from tickfleet.assignment import channel as control
from tickfleet.breaker import BreakerConfig, SharedBreaker
from tickfleet.history.bars import BarBuilder, BarFlusher
from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.metrics.catalog import Metrics
from tickfleet.metrics.flush import AsyncMetricsFlusher
from tickfleet.runtime.clock import Clock
from tickfleet.runtime.connections import RedisRoles, StreamClients, stream_clients
from tickfleet.runtime.lease import AsyncLease, new_owner
from tickfleet.runtime.readiness import wait_until_ready_async
from tickfleet.stream.control_listener import AssignmentFollower, ControlListener
from tickfleet.stream.feed import Feed
from tickfleet.stream.lease_keeper import LeaseKeeper
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.publisher import Fence, PublisherConfig, TickPublisher
from tickfleet.stream.publishing import LaneFactory, Publishing, channels_of
from tickfleet.stream.standby import Standby
from tickfleet.stream.status import StatusWriter, StreamStatus
from tickfleet.supervision import (
    FAIL,
    RestartPolicy,
    Supervisor,
    SupervisorFailed,
    TaskMonitor,
    process_context,
)
from tickfleet.supervision.failures import AsyncFailureLog, TaskFailure

log = logging.getLogger("tickfleet.stream")

ASSIGNMENT_POLL_SECONDS = 5.0
REPORT_SECONDS = 1.0
READY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """Everything a stream takes from the settings, grouped once."""

    redis: RedisRoles
    keys: Keys
    channel_root: str
    underlyings: tuple[str, ...]  # whose ticks the stream publishes (the first: its fence)
    lease_ttl: float
    lease_renew: float
    restart_limit: int
    publisher: PublisherConfig
    breaker: BreakerConfig
    standby: bool = True
    bar_seconds: float = 60.0
    bar_flush_seconds: float = 1.0
    archive: ArchiveSpec | None = None  # None: TICKFLEET_ARCHIVE=off


@dataclass(frozen=True, slots=True)
class ArchiveSpec:
    """Where and how the stream records its ticks, and each underlying's index token (the
    token of its underlying channel's ticks, whose field is the index's symbol)."""

    recorder: RecorderConfig
    index_tokens: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class StreamParts:
    """What a feed may use: the stream's clients and outlet, its status, the lease's say."""

    name: str
    clients: StreamClients
    outlets: Mapping[str, Outlet]  # each underlying's
    status: StreamStatus
    metrics: Metrics
    may_publish: Callable[[], bool]


@dataclass(frozen=True, slots=True)
class _Records:
    """Failure and metric records, written by coroutines and once more at the end."""

    monitor: TaskMonitor
    failures: AsyncFailureLog
    metrics: AsyncMetricsFlusher


FeedFactory = Callable[[StreamParts], Feed]


class StreamRunner:
    def __init__(
        self,
        name: str,
        hostname: str,
        config: StreamConfig,
        feed: FeedFactory,
        clock: Clock,
        context: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.hostname = hostname
        self.config = config
        self.owner = new_owner(name)
        self.status = StreamStatus(stream=name, owner=self.owner, hostname=hostname)
        self.metrics = MetricsBuffer()
        self._feed = feed
        self._clock = clock
        self._context = process_context(stream=name, worker=hostname, **(context or {}))
        self._supervisor: Supervisor | None = None
        self._standby: Standby | None = None
        self._stop_requested = False

    def stop(self) -> None:
        """Ask the stream to end cleanly (status written, lease released, clients closed)."""
        self._stop_requested = True
        if self._supervisor is not None:
            self._supervisor.stop()
        if self._standby is not None:
            self._standby.stop()

    async def run(self) -> str:
        async with AsyncExitStack() as stack:
            clients = await stack.enter_async_context(stream_clients(self.config.redis, self.name))
            await wait_until_ready_async(clients.fleet.ping, "fleet redis", READY_TIMEOUT_SECONDS)
            records = self._open_records(stack, clients)
            keeper = await self._take_lease(stack, clients)
            if keeper is None:
                return "lease held elsewhere"
            supervisor = await self._assemble(stack, clients, records, keeper)
            return await self._supervise(supervisor)
        raise AssertionError("unreachable")  # pragma: no cover - the stack re-raises

    def _open_records(self, stack: AsyncExitStack, clients: StreamClients) -> _Records:
        """Failures and metrics, written last of all (just before the clients close)."""
        keys = self.config.keys
        failures = AsyncFailureLog(clients.fleet, keys.task_failures)
        flusher = AsyncMetricsFlusher(self.metrics, clients.fleet, keys.prefix)
        stack.push_async_callback(flusher.close)
        stack.push_async_callback(failures.flush)
        monitor = TaskMonitor(self._context, self.metrics, failures, self._clock)
        monitor.install(asyncio.get_running_loop())
        return _Records(monitor, failures, flusher)

    async def _take_lease(
        self, stack: AsyncExitStack, clients: StreamClients
    ) -> LeaseKeeper | None:
        keys, config = self.config.keys, self.config
        await clients.fleet.delete(keys.stream_starting(self.name))
        lease = AsyncLease(
            clients.fleet, keys.stream_lease(self.name), config.lease_ttl, self.owner,
            keys.stream_epoch(self.name),
        )  # fmt: skip
        keeper = LeaseKeeper(lease, config.lease_renew, self._clock)
        if not await keeper.acquire() and not (
            self.config.standby and await self._stand_by(clients, keeper)
        ):
            log.info("stream %s is held by another worker; exiting", self.name)
            return None
        stack.push_async_callback(keeper.release)
        log.info("stream %s started (owner %s, epoch %d)", self.name, self.owner, keeper.epoch)
        self.status.started_at = self._clock.time()
        return keeper

    async def _stand_by(self, clients: StreamClients, keeper: LeaseKeeper) -> bool:
        """The lease is held: stand by for it (True once taken over), or exit at once."""
        standby = Standby(clients.fleet, self.config.keys, self.name, self.hostname, keeper)
        if self._stop_requested or not await standby.claim():
            return False
        self._standby = standby
        try:
            outcome = await standby.wait()
        finally:
            self._standby = None
            await standby.release()
        log.info("stream %s: standby on %s %s", self.name, self.hostname, outcome)
        return outcome == "took over"

    async def _assemble(
        self,
        stack: AsyncExitStack,
        clients: StreamClients,
        records: _Records,
        keeper: LeaseKeeper,
    ) -> Supervisor:
        config, keys = self.config, self.config.keys
        writer = StatusWriter(clients.fleet, keys)
        stack.push_async_callback(self._last_status, writer)
        recorder = self._recorder(stack, clients)
        publishing = Publishing.build(
            config.underlyings, clients.sharded, self._lane_factory(clients, keeper, recorder)
        )
        await publishing.sync_once()
        bars = BarFlusher(
            BarBuilder(config.bar_seconds), clients.fleet, keys.history_bars,
            config.bar_flush_seconds,
        )  # fmt: skip
        stack.push_async_callback(bars.close)  # after the feed stopped: its last ticks too
        channels = channels_of(config.channel_root, clients.sharded)
        outlets = {
            u: Outlet(publishing.publisher(u), channels(u), bars.builder)
            for u in config.underlyings
        }
        feed = self._feed(
            StreamParts(self.name, clients, outlets, self.status, self.metrics, keeper.may_publish)
        )
        follower = AssignmentFollower(clients.fleet, keys.assignment, feed, self.status)
        listener = ControlListener(
            clients.fleet, keys.control_channel, self._handler(feed, follower),
            follower.sync, ASSIGNMENT_POLL_SECONDS,
        )  # fmt: skip
        reporter = _Reporter(writer, self.status, publishing, self._clock, recorder)
        restart = RestartPolicy(max_restarts=config.restart_limit)
        supervisor = Supervisor(records.monitor, self.name, on_error=self._note)
        supervisor.supervise("lease", keeper.run, FAIL)
        parts = [("status", reporter.run)]
        for lane in publishing.lanes:
            parts += [("publisher" + lane.label, lane.publisher.run)]
            parts += [("breaker" + lane.label, lane.breaker.run)]
        for name, part in (
            *parts,
            ("failures", records.failures.run),
            ("metrics", records.metrics.run),
            ("bars", bars.run),
            ("control", listener.run),
            ("feed", feed.run),
        ):
            supervisor.supervise(name, part, restart)
        return supervisor

    def _recorder(self, stack: AsyncExitStack, clients: StreamClients) -> TickRecorder | None:
        """The stream's archive recorder, its thread started; on the way out, after the
        publishers stopped, its thread writes what it holds while the loop waits without
        blocking (it never waits on a disk, not even then)."""
        spec = self.config.archive
        if spec is None:
            return None
        channels = channels_of(self.config.channel_root, clients.sharded)
        routes = {}
        for u in self.config.underlyings:
            on = channels(u)
            routes[on.options] = Route(u, "options")
            routes[on.underlying] = Route(u, "underlying", spec.index_tokens[u])
        status = self.status
        recorder = TickRecorder(
            self.name, routes, spec.recorder, self._clock, self.metrics, lambda: status.mode
        ).start()
        stack.push_async_callback(recorder.aclose)
        return recorder

    def _lane_factory(
        self, clients: StreamClients, keeper: LeaseKeeper, recorder: TickRecorder | None
    ) -> LaneFactory:
        """Lanes fenced by the stream's lease, the fence beside the given underlying's
        channels (on a cluster, in their slot)."""
        config = self.config
        channels = channels_of(config.channel_root, clients.sharded)

        def lane(breaker_name: str, underlying: str) -> tuple[TickPublisher, SharedBreaker]:
            breaker = SharedBreaker(
                clients.breaker, breaker_name, config.breaker, self._clock, self.metrics,
                keys=config.keys, worker=f"{self.hostname}:{self.name}",
            )  # fmt: skip
            fence = Fence(channels(underlying).fence(self.name), keeper.epoch, keeper.fenced)
            publisher = TickPublisher(
                clients.publish, self.name, self.metrics, config.publisher, breaker,
                keeper.may_publish, fence, recorder.record if recorder else None,
            )  # fmt: skip
            return publisher, breaker

        return lane

    async def _supervise(self, supervisor: Supervisor) -> str:
        self._supervisor = supervisor
        if self._stop_requested:
            supervisor.stop()
        try:
            await supervisor.run()
        except SupervisorFailed as exc:
            self.status.last_error = str(exc)
            raise
        finally:
            self._supervisor = None
        return "stopped"

    def _handler(
        self, feed: Feed, follower: AssignmentFollower
    ) -> Callable[[control.Message], Awaitable[None]]:
        async def handle(message: control.Message) -> None:
            if isinstance(message, control.Shutdown):
                if message.targets(self.hostname, self.name):
                    self.stop()
            elif isinstance(message, control.Evict):
                feed.forget(message.tokens)
            else:
                await follower.sync()

        return handle

    def _note(self, exc: Exception, failure: TaskFailure) -> None:
        self.status.last_error = f"{failure.task}: {failure.exc_type}: {failure.message}"

    async def _last_status(self, writer: StatusWriter) -> None:
        self.status.mode = "stopped"
        try:
            await writer.write(self.status, self._clock.time())
        except Exception as exc:  # the status key lapses by itself
            log.warning("final status of %s not written: %s", self.name, exc)
        log.info("stream %s ended (%s)", self.name, self.status.last_error or "clean")


class _Reporter:
    """Writes the stream's status every second; an unreachable Redis skips reports."""

    def __init__(
        self,
        writer: StatusWriter,
        status: StreamStatus,
        publishing: Publishing,
        clock: Clock,
        recorder: TickRecorder | None = None,
    ) -> None:
        self._writer = writer
        self._status = status
        self._publishing = publishing
        self._clock = clock
        self._recorder = recorder

    async def run(self) -> None:
        unreachable = False
        while True:
            try:
                await self.report()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                if not unreachable:
                    log.warning("stream %s: status not reported: %r", self._status.stream, exc)
                unreachable = True
            else:
                unreachable = False
            await asyncio.sleep(REPORT_SECONDS)

    async def report(self) -> None:
        status = self._status
        status.ticks = self._publishing.published
        breaker = self._publishing.breaker()
        status.breaker_state = breaker["state"]
        status.breaker_source = breaker["source"]
        status.breaker_failures = breaker["failure_count"]
        status.breaker_opened_at = breaker["opened_at"]
        if self._recorder is not None:
            status.archive = self._recorder.report()
        await self._writer.write(status, self._clock.time())
