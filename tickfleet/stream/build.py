"""Builds a stream from the settings: which parts, which feeds, for which account.

The only place that knows both the settings and the stream's parts; the runner opens
and closes what is built here, and no stream part sees more than it uses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from zoneinfo import ZoneInfo

import numpy as np

from tickfleet.accounts import Account
from tickfleet.breaker import BreakerConfig
from tickfleet.catalog import read_catalog
from tickfleet.clock import Clock
from tickfleet.connections import RedisRoles
from tickfleet.instruments import Instrument
from tickfleet.instruments.model import INDEX_UNDERLYINGS
from tickfleet.instruments.universe import INDEX_TOKEN
from tickfleet.market.hours import MarketHours, StreamMode
from tickfleet.market.options import MockOptionBook
from tickfleet.market.snapshot import RedisSnapshotStore, WalkSpec
from tickfleet.names import UNDERLYING_STREAM, Channels, Keys, account_stream
from tickfleet.settings import Settings
from tickfleet.stream.feed import Feed, FeedSwitch
from tickfleet.stream.pacing import Simulation
from tickfleet.stream.publisher import PublisherConfig
from tickfleet.stream.runner import StreamConfig, StreamParts, StreamRunner
from tickfleet.stream.simulated_index import Index, SimulatedIndex
from tickfleet.stream.simulated_options import RowLookup, SimulatedOptions


def stream_config(settings: Settings) -> StreamConfig:
    s = settings
    return StreamConfig(
        redis=RedisRoles(
            fleet_url=s.redis_url,
            publish_url=s.effective_publish_redis_url,
            breaker_url=s.effective_breaker_redis_url,
            timeout=s.redis_socket_timeout,
            publish_timeout=s.publish_timeout_seconds,
        ),
        keys=Keys(s.key_prefix),
        channels=Channels(s.channel_prefix),
        lease_ttl=s.lease_ttl_seconds,
        lease_renew=s.lease_renew_seconds,
        restart_limit=s.stream_restart_limit,
        publisher=PublisherConfig(s.publish_batch_max, s.publish_timeout_seconds),
        breaker=BreakerConfig.from_settings(s),
    )


def build_account_stream(
    settings: Settings, account: Account, hostname: str, clock: Clock
) -> StreamRunner:
    """The stream of one account: its assigned options, simulated or (later) live."""
    hours = MarketHours.from_settings(settings)
    config = stream_config(settings)

    def feed(parts: StreamParts) -> Feed:
        snapshots = RedisSnapshotStore(parts.clients.fleet, config.keys.market_snapshot)
        options = SimulatedOptions(
            account.account_id,
            MockOptionBook.from_settings(settings, parts.metrics),
            settings.mock_state_max_size,
            snapshots,
            _row_lookup(parts, config.keys),
            parts.outlet,
            parts.status,
            _simulation(settings, clock),
            parts.may_publish,
        )
        decide = _feed_mode(settings, hours, clock, account.has_credentials)
        return FeedSwitch({"mock": options}, decide, parts.status)

    name = account_stream(account.account_id)
    return StreamRunner(name, hostname, config, feed, clock, {"account": account.account_id})


def build_underlying_stream(
    settings: Settings, accounts: Sequence[Account], hostname: str, clock: Clock
) -> StreamRunner:
    """The stream of the index: the market's clock and the snapshot every option reads."""
    hours = MarketHours.from_settings(settings)
    config = stream_config(settings)
    spec = WalkSpec.from_settings(settings)

    index = Index(INDEX_UNDERLYINGS.get(spec.symbol, spec.symbol), spec.symbol, INDEX_TOKEN)

    def feed(parts: StreamParts) -> Feed:
        publish, latest = parts.clients.publish, config.channels.latest_underlying
        simulated = SimulatedIndex(
            index,
            spec,
            settings.mock_underlying_price,
            RedisSnapshotStore(parts.clients.fleet, config.keys.market_snapshot),
            lambda: publish.hget(latest, index.underlying),
            parts.outlet,
            parts.status,
            _simulation(settings, clock),
            parts.may_publish,
        )
        parts.status.tokens = 1  # the index itself
        credentials = any(a.has_credentials for a in accounts)
        decide = _feed_mode(settings, hours, clock, credentials)
        return FeedSwitch({"mock": simulated}, decide, parts.status)

    return StreamRunner(UNDERLYING_STREAM, hostname, config, feed, clock)


def _simulation(settings: Settings, clock: Clock) -> Simulation:
    return Simulation(
        settings.mock_tick_interval_seconds,
        clock,
        np.random.default_rng(settings.mock_seed),
        ZoneInfo(settings.market_timezone),
    )


def _feed_mode(
    settings: Settings, hours: MarketHours, clock: Clock, credentials: bool
) -> Callable[[], StreamMode]:
    def decide() -> StreamMode:
        now = hours.at(clock.time())
        return hours.feed_mode(now, settings.feed, credentials, settings.mock_enabled)

    return decide


def _row_lookup(parts: StreamParts, keys: Keys) -> RowLookup:
    """The catalogued registry rows of ``tokens``."""

    async def lookup(tokens: Collection[int]) -> Mapping[int, Instrument]:
        return await read_catalog(parts.clients.fleet, keys.catalog, tokens)

    return lookup
