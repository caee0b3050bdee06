"""Builds a stream from the settings: which parts, which feeds, for which account.

The only place that knows both the settings and the stream's parts; the runner opens
and closes what is built here, and no stream part sees more than it uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from zoneinfo import ZoneInfo

import numpy as np

from tickfleet.accounts.access_tokens import ConfiguredCredentials, Credentials, SessionStore
from tickfleet.accounts.config import Account, AccountConfigError, find_account, index_accounts
from tickfleet.archive.recorder import RecorderConfig
from tickfleet.assignment.catalog import read_catalog
from tickfleet.breaker import BreakerConfig
from tickfleet.config.settings import Settings
from tickfleet.config.stream_mode import StreamMode
from tickfleet.instruments import Instrument
from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import account_stream, underlying_stream
from tickfleet.kite.connection import ConnectionConfig
from tickfleet.market.hours import MarketHours
from tickfleet.market.options import ChainSpec, MockOptionBook
from tickfleet.market.snapshot import RedisSnapshotStore, WalkSpec
from tickfleet.runtime.clock import Clock
from tickfleet.runtime.connections import RedisRoles
from tickfleet.stream.feed import Feed, FeedSwitch
from tickfleet.stream.feeds.live.index import LiveIndex
from tickfleet.stream.feeds.live.options import LiveOptions, LiveSide, SpotWatch
from tickfleet.stream.feeds.live.session import LiveSession
from tickfleet.stream.feeds.replay.feed import ReplayFeed, ReplaySpec, Tokens
from tickfleet.stream.feeds.simulated.index import Index, SimulatedIndex
from tickfleet.stream.feeds.simulated.options import Chain, ChainFor, RowLookup, SimulatedOptions
from tickfleet.stream.feeds.simulated.pacing import Simulation
from tickfleet.stream.feeds.simulated.seed import kite_last_price, no_seed
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.publisher import PublisherConfig
from tickfleet.stream.runner import ArchiveSpec, StreamConfig, StreamParts, StreamRunner

log = logging.getLogger("tickfleet.stream")


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
        channel_root=s.channel_root,
        underlyings=tuple(s.underlying_names),
        lease_ttl=s.lease_ttl_seconds,
        lease_renew=s.lease_renew_seconds,
        standby=s.stream_standby,
        restart_limit=s.stream_restart_limit,
        publisher=PublisherConfig(s.publish_batch_max, s.publish_timeout_seconds),
        breaker=BreakerConfig.from_settings(s),
        bar_seconds=s.history_bar_seconds,
        bar_flush_seconds=s.history_bar_flush_seconds,
        archive=archive_spec(s),
    )


def archive_spec(settings: Settings) -> ArchiveSpec | None:
    """How the stream records its ticks (``TICKFLEET_ARCHIVE*``); None when it is off."""
    s = settings
    if not s.archive:
        return None
    recorder = RecorderConfig(
        root=s.effective_archive_dir,
        flush_seconds=s.archive_flush_seconds,
        queue_max_ticks=s.archive_queue_max_ticks,
        part_max_ticks=s.archive_part_max_ticks,
        timezone=s.market_timezone,
    )
    tokens = {u.name: u.index_token for u in s.configured_underlyings()}
    return ArchiveSpec(recorder, tokens)


def build_account_stream(
    settings: Settings, account: Account, hostname: str, clock: Clock
) -> StreamRunner:
    """The stream of one account: its assigned options of every underlying, simulated
    or live."""
    hours = MarketHours.from_settings(settings)
    config = stream_config(settings)

    def feed(parts: StreamParts) -> Feed:
        lookup = _row_lookup(parts, config.keys)
        options = SimulatedOptions(
            account.account_id,
            _chains(settings, parts, config.keys),
            settings.mock_state_max_size,
            lookup,
            parts.status,
            _simulation(settings, clock),
            parts.may_publish,
        )
        live = LiveOptions(
            account.account_id,
            _live_session(settings, account.account_id, parts, clock),
            settings.kite_ticker_url,
            connection_config(settings),
            lookup,
            _live_sides(settings, parts, config.keys, clock),
            parts.status,
            hours,
            settings.mock_risk_free_rate,
            clock,
            ZoneInfo(settings.market_timezone),
            parts.metrics,
        )
        replay = _replay(settings, Tokens("options", account.account_id), parts, clock)
        decide = _feed_mode(settings, hours, clock, account.has_credentials)
        return FeedSwitch({"mock": options, "live": live, "replay": replay}, decide, parts.status)

    name = account_stream(account.account_id)
    return StreamRunner(name, hostname, config, feed, clock, {"account": account.account_id})


def _chains(settings: Settings, parts: StreamParts, keys: Keys) -> ChainFor:
    """Each configured underlying's book, index snapshot and channels, made when needed."""
    base = ChainSpec.from_settings(settings)

    def chain_for(name: str) -> Chain | None:
        if name not in settings.underlying_names:
            return None
        underlying = settings.underlying(name)
        spec = replace(base, lot_size=underlying.lot_size, tick_size=underlying.tick_size)
        book = MockOptionBook(spec, max_size=settings.mock_state_max_size, metrics=parts.metrics)
        return Chain(book, *_index_and_outlet(settings, parts, keys, name))

    return chain_for


def _index_and_outlet(
    settings: Settings, parts: StreamParts, keys: Keys, name: str
) -> tuple[RedisSnapshotStore, Outlet]:
    """An underlying's index snapshot and the stream's outlet on its channels."""
    return (
        RedisSnapshotStore(parts.clients.fleet, keys.market_snapshot(name)),
        parts.outlets[name],
    )


def _live_sides(
    settings: Settings, parts: StreamParts, keys: Keys, clock: Clock
) -> dict[str, LiveSide]:
    """Each configured underlying's index level and channels, for the live options."""
    sides = {}
    for name in settings.underlying_names:
        snapshots, outlet = _index_and_outlet(settings, parts, keys, name)
        sides[name] = LiveSide(SpotWatch(snapshots, clock), outlet)
    return sides


def build_underlying_stream(
    settings: Settings, name: str, accounts: Sequence[Account], hostname: str, clock: Clock
) -> StreamRunner:
    """The stream of one underlying's index: the snapshot its options are priced on."""
    hours = MarketHours.from_settings(settings)
    underlying = settings.underlying(name)
    config = replace(stream_config(settings), underlyings=(name,))
    spec = replace(WalkSpec.from_settings(settings), symbol=underlying.index_symbol)
    index = Index(underlying.name, underlying.index_symbol, underlying.index_token)

    def feed(parts: StreamParts) -> Feed:
        outlet = parts.outlets[name]
        publish, latest = parts.clients.publish, outlet.channels.latest_underlying
        snapshots = RedisSnapshotStore(parts.clients.fleet, config.keys.market_snapshot(name))
        session = index_accounts(accounts, settings.underlying_names).get(name)
        seed = no_seed()
        if session is not None:
            store = SessionStore(parts.clients.fleet, config.keys, session.account_id)
            configured = configured_credentials(settings, session.account_id)
            seed = kite_last_price(store, configured, settings.kite_api_url, underlying.quote_key)
        simulated = SimulatedIndex(
            index,
            spec,
            underlying.spot,
            seed,
            snapshots,
            lambda: publish.hget(latest, index.underlying),
            outlet,
            parts.status,
            _simulation(settings, clock),
            parts.may_publish,
        )
        parts.status.tokens = 1  # the index itself
        index_only = Tokens("underlying", fixed=frozenset({index.token}))
        feeds: dict[StreamMode, Feed] = {
            "mock": simulated,
            "replay": _replay(settings, index_only, parts, clock),
        }
        if session is not None:
            feeds["live"] = LiveIndex(
                index,
                _live_session(settings, session.account_id, parts, clock),
                settings.kite_ticker_url,
                connection_config(settings),
                snapshots,
                outlet,
                parts.status,
                clock,
                ZoneInfo(settings.market_timezone),
                parts.metrics,
            )
        decide = _feed_mode(settings, hours, clock, session is not None)
        return FeedSwitch(feeds, decide, parts.status)

    return StreamRunner(underlying_stream(name), hostname, config, feed, clock)


def connection_config(settings: Settings) -> ConnectionConfig:
    return ConnectionConfig(
        stale_seconds=settings.kite_stale_seconds,
        connect_timeout=settings.kite_connect_timeout_seconds,
        backoff_base=settings.kite_reconnect_base_seconds,
        backoff_max=settings.kite_reconnect_max_seconds,
    )


def _live_session(
    settings: Settings, account_id: str, parts: StreamParts, clock: Clock
) -> LiveSession:
    keys = Keys(settings.key_prefix)
    return LiveSession(
        SessionStore(parts.clients.fleet, keys, account_id),
        configured_credentials(settings, account_id),
        settings.kite_session_check_seconds,
        parts.status,
        clock,
        parts.metrics,
    )


def configured_credentials(settings: Settings, account_id: str) -> ConfiguredCredentials:
    """The account's credentials as configured now (the accounts file is read afresh)."""

    def read() -> Credentials | None:
        try:
            account = find_account(settings, account_id)
        except AccountConfigError as exc:
            log.warning("accounts configuration unreadable, ignored: %s", exc)
            return None
        return account.credentials if account is not None else None

    return read


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
        return hours.feed_mode(
            now, settings.feed, credentials, settings.mock_enabled, settings.off_hours
        )

    return decide


def _replay(settings: Settings, tokens: Tokens, parts: StreamParts, clock: Clock) -> ReplayFeed:
    spec = ReplaySpec(
        settings.effective_archive_dir,
        settings.replay_date,
        settings.replay_speed,
        settings.replay_from,
        settings.replay_to,
        ZoneInfo(settings.market_timezone),
    )
    return ReplayFeed(
        spec, tokens, parts.outlets, parts.clients.publish, parts.status, clock, parts.may_publish
    )


def _row_lookup(parts: StreamParts, keys: Keys) -> RowLookup:
    """The catalogued registry rows of ``tokens``."""

    async def lookup(tokens: Collection[int]) -> Mapping[int, Instrument]:
        return await read_catalog(parts.clients.fleet, keys.catalog, tokens)

    return lookup
