"""The commands that work on the fleet's database: set it up, load the instruments,
reload the subscriptions, print an instrument's candles."""

from __future__ import annotations

import argparse
import csv
import sys
from contextlib import closing
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from producers.console.terminal import working
from tickfleet.config.settings import Settings
from tickfleet.history.kite_source import HistoryError
from tickfleet.history.service import HistoryRequest
from tickfleet.instruments import choose_source, refresh_instruments
from tickfleet.kite.candles import Interval
from tickfleet.migrations import initialise
from tickfleet.runtime.readiness import wait_until_ready
from tickfleet.storage.sql import describe, make_engine
from tickfleet.wiring.services import Services
from workers.app import make_app
from workers.enqueue import CeleryReloadScheduler, CeleryStreamStarter


def _now(services: Services) -> datetime:
    return services.hours.at(services.clock.time())


def _initialise(services: Services) -> None:
    settings = services.settings
    engine = make_engine(
        settings.database_url, create=True, timeout=settings.database_timeout_seconds
    )
    try:
        database = initialise(engine, _now(services))
    finally:
        engine.dispose()
    print(f"database {describe(services.settings.database_url)} (id {database})")


def init_db(settings: Settings, args: argparse.Namespace) -> int:
    """Create or migrate the schema; load instruments when the registry is empty (or --refresh)."""
    with closing(Services(settings)) as services:
        wait_until_ready(lambda: _initialise(services), "database", args.wait)
        wait_until_ready(services.redis.ping, "redis", args.wait)
        if args.refresh or services.registry.count() == 0:
            return _refresh(services)
        print(f"database ready: {services.registry.count()} instruments")
        return 0


def refresh(settings: Settings, _args: argparse.Namespace) -> int:
    with closing(Services(settings)) as services:
        return _refresh(services)


def _set_up(services: Services) -> None:
    """Raise ``DatabaseNotReadyError`` unless ``init-db`` set the database up: said so, it
    is a hint; found as a missing table halfway through a command, it is a traceback."""
    services.database_id  # noqa: B018 - read for its check


def _refresh(services: Services) -> int:
    _set_up(services)
    now = _now(services)
    with working("refreshing instruments"):
        summary = refresh_instruments(
            services.registry,
            choose_source(services.settings, services.kite_credentials()),
            now.date(),
            now,
        )
    print(
        f"instruments: added {summary.added}, updated {summary.updated}, "
        f"removed {summary.removed}, total {summary.total}"
    )
    return 0


def reload(settings: Settings, args: argparse.Namespace) -> int:
    """Request a reload, or with --now run one immediately and wait for it."""
    celery = make_app(settings)
    with closing(Services(settings)) as services:
        coordinator = services.coordinator(CeleryReloadScheduler(celery))
        if not args.now:
            request = coordinator.request("command line")
            print(
                f"reload requested (generation {request.generation}, "
                f"{'scheduled' if request.scheduled else 'coalesced'})"
            )
            return 0
        _set_up(services)
        starter = CeleryStreamStarter(celery, settings.stream_start_grace_seconds)
        rebalancer = services.rebalancer(starter)
        rebalancer.switch_database = args.switch_database
        outcome = coordinator.run_now(rebalancer)
    print(
        orjson.dumps(
            {"kind": outcome.kind, "summary": outcome.summary, "error": outcome.error}
        ).decode()
    )
    return 0 if outcome.kind == "ran" else 1


def history(settings: Settings, args: argparse.Namespace) -> int:
    """Print one instrument's candles as ``GET /history`` answers them (JSON, or CSV)."""
    tz = ZoneInfo(settings.market_timezone)
    start, end = (t if t.tzinfo else t.replace(tzinfo=tz) for t in (args.start, args.end))
    request = HistoryRequest(
        args.token, start, end, Interval(args.interval), args.account, args.continuous, args.oi
    )
    with closing(Services(settings)) as services:
        _set_up(services)
        try:
            document = services.history().answer(request)
        except (HistoryError, ValueError, LookupError) as exc:
            print(f"tickfleet history: {exc}", file=sys.stderr)
            return 1
    if not args.csv:
        print(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return 0
    candles = document["candles"]
    if candles:
        writer = csv.DictWriter(sys.stdout, fieldnames=list(candles[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(candles)
    return 0
