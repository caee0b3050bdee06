"""Builds streams from one process's services: the only place stream parts are wired.

Three Redis roles stay separate so each can live on its own server: the fleet Redis
(leases, assignment, control channel, snapshots), the publish target that consumers
read, and the breaker's state store. Clients that touch a possibly-dead server get
short timeouts and no retry loops, so an outage costs one timeout, never a stall.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection

import numpy as np

from tickfleet import control
from tickfleet.accounts import Account
from tickfleet.breaker import BreakerConfig, SharedBreaker
from tickfleet.connections import fail_fast_async_client, fail_fast_client
from tickfleet.failures import RedisFailureLog
from tickfleet.lease import Lease, new_owner
from tickfleet.market.contracts import InstrumentType
from tickfleet.market.options import MockOptionBook, OptionContract
from tickfleet.market.snapshot import RedisSnapshotStore, WalkSpec
from tickfleet.monitor import TaskMonitor, process_context
from tickfleet.names import PUBLISH_BREAKER, UNDERLYING_STREAM, account_stream
from tickfleet.services import Services
from tickfleet.stream.account_feed import AccountFeed, ContractLookup
from tickfleet.stream.control_listener import ControlListener, Handler, Poll
from tickfleet.stream.lease_keeper import LeaseKeeper
from tickfleet.stream.pacing import tick_forever
from tickfleet.stream.publisher import PublisherConfig, TickPublisher
from tickfleet.stream.runner import Part, StreamRunner, restart_policy
from tickfleet.stream.status import StatusWriter, StreamStatus
from tickfleet.stream.underlying_feed import UnderlyingFeed

ASSIGNMENT_POLL_SECONDS = 5.0
_OPTION_TYPES: dict[str, InstrumentType] = {"CE": "CE", "PE": "PE"}


class _Kit:
    """The parts every stream has: lease, monitor, breaker, publisher, status, clients."""

    def __init__(self, services: Services, name: str, hostname: str, context: dict[str, str]):
        s = services.settings
        self.services = services
        self.name = name
        self.hostname = hostname
        self.fleet = fail_fast_async_client(s.redis_url, s.redis_socket_timeout)
        # The publisher bounds every batch with its own timeout; a per-read socket timeout
        # on top would only add a timer per reply.
        self.target = fail_fast_async_client(
            s.effective_publish_redis_url, s.publish_timeout_seconds, read_timeout=False
        )
        self.breaker = SharedBreaker(
            fail_fast_client(s.effective_breaker_redis_url),
            PUBLISH_BREAKER,
            BreakerConfig.from_settings(s),
            services.clock,
            services.metrics,
            keys=services.keys,
            worker=f"{hostname}:{name}",
        )
        lease = Lease(
            services.redis,
            services.keys.stream_lease(name),
            s.lease_ttl_seconds,
            owner=new_owner(name),
        )
        self.keeper = LeaseKeeper(lease, s.lease_renew_seconds, services.clock)
        self.status = StreamStatus(stream=name, owner=lease.owner, hostname=hostname)
        failure_log = RedisFailureLog(
            fail_fast_client(s.redis_url, 1.0), services.keys.task_failures
        )
        self.monitor = TaskMonitor(
            process_context(stream=name, worker=hostname, **context),
            services.metrics,
            failure_log,
            services.clock,
        )
        config = PublisherConfig(
            s.publish_batch_max, s.publish_flush_seconds, s.publish_timeout_seconds
        )
        self.publisher = TickPublisher(
            self.target, name, services.metrics, config, self.breaker, self.keeper.may_publish
        )
        self.rng = np.random.default_rng(s.mock_seed)
        self.hours = services.hours
        self._status_writer = StatusWriter(services.redis, services.keys)

    def mode(self, has_credentials: bool) -> str:
        s = self.services.settings
        now = self.hours.at(self.services.clock.time())
        return self.hours.feed_mode(now, s.feed, has_credentials, s.mock_enabled)

    def report(self, status: StreamStatus) -> None:
        status.ticks = self.publisher.published
        breaker = self.breaker.snapshot()
        status.breaker_state = breaker["state"]
        status.breaker_source = breaker["source"]
        status.breaker_failures = breaker["failure_count"]
        status.breaker_opened_at = breaker["opened_at"]
        self._status_writer.write(status, self.services.clock.time())

    async def close(self) -> None:
        await asyncio.to_thread(self.breaker.stop)
        await self.fleet.aclose()
        await self.target.aclose()

    async def open(self) -> None:
        await asyncio.to_thread(self.breaker.start)

    def build(
        self,
        tick: Callable[[], Awaitable[None]],
        has_credentials: bool,
        on_change: Handler | None,
        poll: Poll,
    ) -> StreamRunner:
        """The runner: publisher, control listener and paced feed, under one supervisor."""
        s = self.services.settings
        listener = ControlListener(
            self.fleet,
            self.services.keys.control_channel,
            self._handler(on_change),
            poll,
            ASSIGNMENT_POLL_SECONDS,
        )

        def feed() -> Awaitable[None]:
            mode = lambda: self.mode(has_credentials)  # noqa: E731
            return tick_forever(
                s.mock_tick_interval_seconds, mode, self.status, tick, self.keeper.may_publish
            )

        parts = [
            Part("publisher", self.publisher.run),
            Part("control", listener.run),
            Part("feed", feed),
        ]
        self._runner = StreamRunner(
            self.name,
            self.keeper,
            self.monitor,
            self.status,
            parts,
            self.report,
            self.services.clock,
            openers=[self.open],
            closers=[self.close],
            restart=restart_policy(s.stream_restart_limit),
        )
        return self._runner

    def _handler(self, on_change: Handler | None) -> Handler:
        async def handle(message: control.Message) -> None:
            if isinstance(message, control.Shutdown):
                if message.targets(self.hostname, self.name):
                    self._runner.stop()
            elif on_change is not None:
                await on_change(message)

        return handle


def _contracts(services: Services) -> ContractLookup:
    """Registry lookup of the options among ``tokens`` (other instruments are not simulated)."""

    def lookup(tokens: Collection[int]) -> list[OptionContract]:
        out = []
        for i in services.registry.get_many(tokens).values():
            kind = _OPTION_TYPES.get(i.instrument_type)
            if kind is not None and i.expiry is not None:
                out.append(
                    OptionContract(i.instrument_token, i.tradingsymbol, kind, i.strike, i.expiry)
                )
        return out

    return lookup


def build_account_stream(services: Services, account: Account, hostname: str) -> StreamRunner:
    name = account_stream(account.account_id)
    kit = _Kit(services, name, hostname, {"account": account.account_id})
    s = services.settings
    feed = AccountFeed(
        account.account_id,
        MockOptionBook.from_settings(s, services.metrics),
        s.mock_state_max_size,
        kit.fleet,
        services.keys,
        services.channels,
        kit.publisher,
        kit.status,
        _contracts(services),
        services.clock,
        kit.rng,
        s.market_timezone,
    )

    async def on_change(message: control.Message) -> None:
        if isinstance(message, control.AssignmentChanged):
            await feed.sync_assignment()
        elif isinstance(message, control.Evict):
            feed.forget(message.tokens)

    return kit.build(feed.tick, account.has_credentials, on_change, feed.sync_assignment)


def build_underlying_stream(services: Services, hostname: str) -> StreamRunner:
    kit = _Kit(services, UNDERLYING_STREAM, hostname, {})
    s = services.settings
    store = RedisSnapshotStore(services.redis, services.keys.market_snapshot)
    feed = UnderlyingFeed(
        WalkSpec.from_settings(s),
        s.mock_underlying_price,
        store,
        kit.publisher,
        services.channels,
        kit.status,
        services.clock,
        kit.rng,
        kit.target,
    )
    credentials = any(a.has_credentials for a in services.accounts)
    kit.status.tokens = 1  # the index itself

    async def nothing_to_poll() -> None:
        return None

    return kit.build(feed.tick, credentials, None, nothing_to_poll)
