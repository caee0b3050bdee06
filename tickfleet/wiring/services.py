"""One process's domain objects, wired from settings.

Workers and the API both need the same Redis client, database, stores and metrics; they
build one ``Services`` per process (after fork, for prefork workers) instead of
module-level singletons, and pass the Celery-specific pieces (how to enqueue a reload
or a stream) in from outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import redis
from redis import Redis
from redis.cluster import RedisCluster
from sqlalchemy import Engine

from tickfleet.accounts.access_tokens import Credentials, rest_credentials
from tickfleet.accounts.config import Account, load_accounts, rest_account
from tickfleet.assignment.plan import Configured
from tickfleet.assignment.store import AssignmentStore
from tickfleet.breaker import BreakerConfig
from tickfleet.config.settings import Settings
from tickfleet.config.underlyings import UnknownUnderlyingError
from tickfleet.control.debounce import ReloadTiming
from tickfleet.control.eviction import ExpiryEvictor
from tickfleet.control.launcher import StreamLauncher, StreamStarter
from tickfleet.control.presence import fleet_capacity
from tickfleet.control.rebalance import Rebalancer
from tickfleet.control.reload import ReloadConfig, ReloadCoordinator, ReloadScheduler
from tickfleet.health.coverage import Grace
from tickfleet.health.document import HealthSources
from tickfleet.history.bar_store import BarStore
from tickfleet.history.kite_source import KiteSource
from tickfleet.history.service import HistoryService, HistorySources
from tickfleet.instruments import InstrumentRegistry
from tickfleet.keyspace.keys import Keys
from tickfleet.market.hours import MarketHours
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.metrics.flush import MetricsFlusher
from tickfleet.runtime.clock import Clock, clock_from_settings
from tickfleet.runtime.connections import fail_fast_client, patient_client, sync_publish_client
from tickfleet.storage.sql import SessionFactory, database_id, make_engine, make_session_factory
from tickfleet.subscriptions.desk import Desk
from tickfleet.subscriptions.events import EventChannel
from tickfleet.subscriptions.store import SubscriptionStore
from tickfleet.ticks.channels import Channels


@dataclass
class Services:
    settings: Settings
    metrics: MetricsBuffer = field(default_factory=MetricsBuffer)

    @cached_property
    def clock(self) -> Clock:
        """The fleet clock (assign another before first use to drive time in a test)."""
        return clock_from_settings(self.settings)

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.key_prefix)

    def channels(self, underlying: str | None = None) -> Channels:
        """A configured underlying's channels (the first one's by default), named as on
        the publish Redis: sharded (``ticker:{nifty}``) when that is a Redis Cluster."""
        names = self.settings.underlying_names
        name = (underlying or names[0]).upper()
        if name not in names:
            raise UnknownUnderlyingError(
                f"{name} is not one of this fleet's underlyings ({', '.join(names)})"
            )
        sharded = isinstance(self.publish_redis, RedisCluster)
        return Channels.for_underlying(self.settings.channel_root, name, sharded)

    @cached_property
    def publish_redis(self) -> redis.Redis | RedisCluster:
        """Where ticks, latest-tick hashes and subscription events are: the publish Redis
        (the fleet's own unless ``PUBLISH_REDIS_URL`` names another), asked once whether it
        is a Redis Cluster."""
        url, timeout = self.settings.effective_publish_redis_url, self.settings.redis_socket_timeout
        if url == self.settings.redis_url:
            return self.redis  # the broker's Redis: never a cluster (kombu has no such transport)
        return sync_publish_client(url, timeout)

    @cached_property
    def redis(self) -> redis.Redis:
        return patient_client(self.settings.redis_url, self.settings.redis_socket_timeout)

    @cached_property
    def engine(self) -> Engine:
        """The database engine; a missing SQLite file raises ``DatabaseNotReadyError``."""
        return make_engine(
            self.settings.database_url, timeout=self.settings.database_timeout_seconds
        )

    @cached_property
    def database_id(self) -> str:
        """The stamp ``tickfleet init-db`` left; raises when the database was never set up."""
        return database_id(self.engine)

    @cached_property
    def hours(self) -> MarketHours:
        return MarketHours.from_settings(self.settings)

    @cached_property
    def sessions(self) -> SessionFactory:
        return make_session_factory(self.engine)

    @cached_property
    def accounts(self) -> list[Account]:
        return load_accounts(self.settings)

    def kite_credentials(self) -> Credentials | None:
        """The REST account's credentials for Kite's REST side; None without one."""
        account = rest_account(self.accounts)
        if account is None:
            return None
        return rest_credentials(self.redis, self.keys, account.account_id, account.credentials)

    @cached_property
    def subscriptions(self) -> SubscriptionStore:
        """Its SQLite write slot waits no longer than any other database wait."""
        return SubscriptionStore(self.sessions, self.settings.database_timeout_seconds)

    @cached_property
    def registry(self) -> InstrumentRegistry:
        return InstrumentRegistry(self.sessions)

    @cached_property
    def assignments(self) -> AssignmentStore:
        return AssignmentStore(self.redis, self.keys)

    @cached_property
    def breaker_store(self) -> Redis:
        """Fail-fast client of the breaker's state store (may be its own Redis)."""
        return fail_fast_client(self.settings.effective_breaker_redis_url)

    @cached_property
    def events(self) -> EventChannel:
        return EventChannel(self.publish_redis, lambda u: self.channels(u).events, self.metrics)

    @cached_property
    def flusher(self) -> MetricsFlusher:
        return MetricsFlusher(self.metrics, self.redis, self.settings.key_prefix)

    def desk(self) -> Desk:
        return Desk(
            self.subscriptions,
            self.registry,
            self.accounts,
            self.hours,
            self.settings.max_tokens_per_connection,
            self.events,
        )

    def health_sources(self) -> HealthSources:
        """What ``/health`` and ``/metrics`` read, and the settings bounding their verdicts."""
        s = self.settings
        return HealthSources(
            redis=self.redis,
            keys=self.keys,
            engine=self.engine,
            registry=self.registry,
            subscriptions=self.subscriptions,
            assignments=self.assignments,
            breaker_store=self.breaker_store,
            breaker=BreakerConfig.from_settings(s),
            clock=self.clock,
            hours=self.hours,
            accounts=lambda: self.accounts,
            underlyings=s.underlying_names,
            database_id=lambda: self.database_id,
            stale_seconds=s.stream_stale_seconds,
            grace=Grace(
                pending=s.stream_stale_seconds + s.reload_max_wait_seconds,
                expired=s.mock_expiry_sweep_seconds + s.stream_stale_seconds,
            ),
            archive_min_free_bytes=s.archive_min_free_mb * 1024 * 1024,
        )

    def history(self) -> HistoryService:
        """History as an API process or the command line answers it: the registry, the
        fleet's bars, Kite (its rate limit and cache in Redis) and the accounts."""
        kite = KiteSource.from_settings(self.settings, self.redis)
        sources = HistorySources(
            self.registry.get, BarStore(self.sessions), kite.fetch, lambda: self.accounts
        )
        return HistoryService(
            sources,
            self.hours,
            self.settings.history_bar_seconds,
            self.settings.mock_risk_free_rate,
        )

    def evictor(self) -> ExpiryEvictor:
        return ExpiryEvictor(
            self.subscriptions,
            self.registry,
            self.redis,
            self.keys,
            self.clock,
            self.hours,
            self.events,
        )

    def coordinator(self, scheduler: ReloadScheduler) -> ReloadCoordinator:
        s = self.settings
        config = ReloadConfig(
            timing=ReloadTiming(
                s.reload_debounce_seconds, s.reload_max_wait_seconds, s.reload_min_interval_seconds
            ),
            lock_ttl=s.reload_lock_ttl_seconds,
            marker_ttl=s.reload_marker_ttl_seconds,
        )
        return ReloadCoordinator(self.redis, self.keys, config, self.clock, scheduler, self.metrics)

    def launcher(self, starter: StreamStarter) -> StreamLauncher:
        return StreamLauncher(
            self.redis,
            self.keys,
            starter,
            self.metrics,
            self.settings.stream_start_grace_seconds,
            lambda: fleet_capacity(self.redis, self.keys, self.clock.time()),
            standbys=self.settings.stream_standby,
        )

    @property
    def configured(self) -> Configured:
        """The underlyings and account ids an assignment must be computed for."""
        accounts = tuple(sorted(a.account_id for a in self.accounts))
        return Configured(self.settings.underlying_names, accounts)

    def rebalancer(self, starter: StreamStarter) -> Rebalancer:
        return Rebalancer(
            subscriptions=self.subscriptions,
            registry=self.registry,
            accounts=self.accounts,
            assignments=self.assignments,
            launcher=self.launcher(starter),
            clock=self.clock,
            hours=self.hours,
            per_connection=self.settings.max_tokens_per_connection,
            database=lambda: self.database_id,
            events=self.events,
            configured=self.configured,
        )

    def close(self) -> None:
        if "flusher" in self.__dict__:
            self.flusher.stop()
        for name in ("publish_redis", "redis", "breaker_store"):  # closing twice is harmless
            if name in self.__dict__:
                self.__dict__[name].close()
        if "engine" in self.__dict__:
            self.engine.dispose()
