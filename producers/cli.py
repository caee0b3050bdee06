"""The ``tickfleet`` command line: set up the database, reload, refresh, watch ticks,
print candles.

Exit status: 0 on success; 1 when a reload did not run, ``tail`` printed no tick or
``history`` was refused (the reason on stderr); 2 when the database is missing or was
never initialised (``tickfleet init-db``).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson

from producers import kite_sim
from tickfleet.db import DatabaseNotReadyError, describe, initialise, make_engine
from tickfleet.history import Interval
from tickfleet.history.kite_source import HistoryError
from tickfleet.history.service import HistoryRequest, HistoryService
from tickfleet.instruments import choose_source, refresh_instruments
from tickfleet.readiness import wait_until_ready
from tickfleet.services import Services
from tickfleet.settings import get_settings
from workers.app import make_app
from workers.enqueue import CeleryReloadScheduler, CeleryStreamStarter

Command = Callable[[Services, argparse.Namespace], int]


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


def cmd_init_db(services: Services, args: argparse.Namespace) -> int:
    """Create or migrate the schema; load instruments when the registry is empty (or --refresh)."""
    wait_until_ready(lambda: _initialise(services), "database", args.wait)
    wait_until_ready(services.redis.ping, "redis", args.wait)
    if args.refresh or services.registry.count() == 0:
        return cmd_refresh(services, args)
    print(f"database ready: {services.registry.count()} instruments")
    return 0


def cmd_refresh(services: Services, _args: argparse.Namespace) -> int:
    now = _now(services)
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


def cmd_reload(services: Services, args: argparse.Namespace) -> int:
    """Request a reload, or with --now run one immediately and wait for it."""
    celery = make_app(services.settings)
    coordinator = services.coordinator(CeleryReloadScheduler(celery))
    if not args.now:
        request = coordinator.request("command line")
        print(
            f"reload requested (generation {request.generation}, "
            f"{'scheduled' if request.scheduled else 'coalesced'})"
        )
        return 0
    starter = CeleryStreamStarter(celery, services.settings.stream_start_grace_seconds)
    rebalancer = services.rebalancer(starter)
    rebalancer.switch_database = args.switch_database
    outcome = coordinator.run_now(rebalancer)
    print(
        orjson.dumps(
            {"kind": outcome.kind, "summary": outcome.summary, "error": outcome.error}
        ).decode()
    )
    return 0 if outcome.kind == "ran" else 1


def cmd_tail(services: Services, args: argparse.Namespace) -> int:
    """Print live ticks as JSON lines, optionally only some tokens, until --limit or --seconds."""
    channels = services.channels
    wanted = {
        "options": [channels.options],
        "underlying": [channels.underlying],
        "all": [channels.options, channels.underlying],
    }[args.channel]
    tokens = set(args.token or [])
    pubsub = services.redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
    pubsub.subscribe(*wanted)
    printed, deadline = 0, time.monotonic() + args.seconds if args.seconds else None
    try:
        while args.limit is None or printed < args.limit:
            if deadline is not None and time.monotonic() >= deadline:
                break
            message = pubsub.get_message(timeout=0.5)
            if message is None:
                continue
            tick = orjson.loads(message["data"])
            if tokens and tick.get("instrument_token") not in tokens:
                continue
            print(orjson.dumps(tick).decode(), flush=True)
            printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        pubsub.close()
    return 0 if printed else 1


def cmd_history(services: Services, args: argparse.Namespace) -> int:
    """Print one instrument's candles as ``GET /history`` answers them (JSON, or CSV)."""
    tz = ZoneInfo(services.settings.market_timezone)
    start, end = (t if t.tzinfo else t.replace(tzinfo=tz) for t in (args.start, args.end))
    request = HistoryRequest(
        args.token, start, end, Interval(args.interval), args.account, args.continuous, args.oi
    )
    try:
        document = HistoryService.from_services(services).answer(request)
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tickfleet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init-db", help="create or migrate the schema, load instruments if empty")
    init.add_argument("--refresh", action="store_true", help="reload instruments anyway")
    init.add_argument("--wait", type=float, default=30.0, help="seconds to wait for DB/Redis")
    init.set_defaults(func=cmd_init_db)
    sub.add_parser("refresh-instruments", help="reload the instrument registry now").set_defaults(
        func=cmd_refresh
    )
    reload = sub.add_parser("reload", help="request a subscription reload")
    reload.add_argument("--now", action="store_true", help="run immediately and wait")
    reload.add_argument(
        "--switch-database",
        action="store_true",
        help="with --now: move the fleet to this database on purpose",
    )
    reload.set_defaults(func=cmd_reload)
    tail = sub.add_parser("tail", help="print live ticks from Redis")
    tail.add_argument("--token", type=int, action="append", help="only this token (repeatable)")
    tail.add_argument("--limit", type=int, help="stop after this many ticks")
    tail.add_argument("--seconds", type=float, help="stop after this long")
    tail.add_argument("--channel", choices=["options", "underlying", "all"], default="all")
    tail.set_defaults(func=cmd_tail)
    history = sub.add_parser("history", help="print an instrument's candles")
    history.add_argument("token", type=int)
    zoned = "ISO 8601; naive means market time"
    history.add_argument(
        "--from", dest="start", type=datetime.fromisoformat, required=True, help=zoned
    )
    history.add_argument("--to", dest="end", type=datetime.fromisoformat, required=True, help=zoned)
    history.add_argument("--interval", choices=[i.value for i in Interval], default="minute")
    history.add_argument("--account", help="the account that asks Kite")
    history.add_argument("--continuous", action="store_true")
    history.add_argument("--oi", action="store_true", help="open interest (options: and greeks)")
    history.add_argument("--csv", action="store_true", help="the candles as CSV")
    history.set_defaults(func=cmd_history)
    kite_sim.add_arguments(sub.add_parser("kite-sim", help="serve Kite's ticker and REST locally"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "kite-sim":  # no database, no Redis: only the settings
        return kite_sim.run(settings, args)
    services = Services(settings)
    try:
        func: Command = args.func
        return func(services, args)
    except DatabaseNotReadyError as exc:
        print(f"tickfleet {args.command}: {exc}", file=sys.stderr)
        return 2
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
