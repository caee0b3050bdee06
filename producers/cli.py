"""The ``tickfleet`` command line: set up the database, reload, refresh, watch ticks,
print candles; through the API: the fleet's status, subscribe and unsubscribe.

Exit status: 0 on success; 1 when a reload did not run, ``tail`` printed no tick,
``history`` was refused, the fleet is not healthy (``status``), or ``chain --once`` found
no streamed strike. A command that meets an expected failure says in a line or two what
failed, why and what to do, and exits 1 when it may succeed later as it is (Redis, the
API, the database or Kite down or refusing), 2 when the arguments or the setup must
change first (``producers.console.failures``). The redrawn screens (``status --watch``,
``chain``) end with Ctrl-C and exit 0.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from datetime import time as clock_time
from typing import NoReturn
from zoneinfo import ZoneInfo

import orjson
import redis
from rich.console import RenderableType
from rich.table import Table

from producers.api_client import ApiClient, ApiError
from producers.console.chain import chain_table
from producers.console.contracts import Selection, SelectionError, parse_targets, tokens_of
from producers.console.failures import SETUP, explain
from producers.console.status import render, render_watched, summarise, unreachable
from producers.console.terminal import console, redraw, working
from producers.kite_sim import command as kite_sim
from tickfleet.archive.export import FORMATS, day_stats, export_ticks
from tickfleet.chain.option_chain import read_chain
from tickfleet.config.settings import Settings, get_settings
from tickfleet.history.kite_source import HistoryError
from tickfleet.history.service import HistoryRequest
from tickfleet.instruments import choose_source, refresh_instruments
from tickfleet.kite.candles import Interval
from tickfleet.migrations import initialise
from tickfleet.runtime.readiness import wait_until_ready
from tickfleet.storage.sql import describe, make_engine
from tickfleet.ticks.subscription import NOT_A_TICK, TickListener
from tickfleet.wiring.services import Services
from workers.app import make_app
from workers.enqueue import CeleryReloadScheduler, CeleryStreamStarter

Command = Callable[[Services, argparse.Namespace], int]
log = logging.getLogger("tickfleet.cli")


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


def _set_up(services: Services) -> None:
    """Raise ``DatabaseNotReadyError`` unless ``init-db`` set the database up: said so, it
    is a hint; found as a missing table halfway through a command, it is a traceback."""
    services.database_id  # noqa: B018 - read for its check


def cmd_refresh(services: Services, _args: argparse.Namespace) -> int:
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
    _set_up(services)
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
    channels = services.channels(args.underlying)
    wanted = {
        "options": [channels.options],
        "underlying": [channels.underlying],
        "all": [channels.options, channels.underlying],
    }[args.channel]
    tokens = set(args.token or [])
    url = services.settings.effective_publish_redis_url
    listener = _listen(url, wanted)
    printed, deadline = 0, time.monotonic() + args.seconds if args.seconds else None
    try:
        while args.limit is None or printed < args.limit:
            if deadline is not None and time.monotonic() >= deadline:
                break
            try:
                heard = listener.get(timeout=0.5)
            except redis.ConnectionError as exc:  # lost, or the slot moved: listen again
                print(f"tail: listening again ({exc})", file=sys.stderr)
                listener.close()
                time.sleep(0.2)
                listener = _listen(url, wanted)
                continue
            if heard is None or heard is NOT_A_TICK:
                continue
            tick = orjson.loads(heard[1])
            if tokens and tick.get("instrument_token") not in tokens:
                continue
            print(orjson.dumps(tick).decode(), flush=True)
            printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    return 0 if printed else 1


def _listen(url: str, channels: list[str]) -> TickListener:
    listener = TickListener.open(url)
    try:
        listener.subscribe(*channels)
    except BaseException:
        listener.close()
        raise
    return listener


def cmd_history(services: Services, args: argparse.Namespace) -> int:
    """Print one instrument's candles as ``GET /history`` answers them (JSON, or CSV)."""
    _set_up(services)
    tz = ZoneInfo(services.settings.market_timezone)
    start, end = (t if t.tzinfo else t.replace(tzinfo=tz) for t in (args.start, args.end))
    request = HistoryRequest(
        args.token, start, end, Interval(args.interval), args.account, args.continuous, args.oi
    )
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


def _api(services: Services, args: argparse.Namespace) -> ApiClient:
    return ApiClient.from_settings(services.settings, args.api)


def cmd_ticks(settings: Settings, args: argparse.Namespace) -> int:
    """The archive's ticks of a day: ``export`` (payloads as published, in publish order)
    or ``stats`` (a summary). Reads files only: no Redis, no database."""
    root, tz = settings.effective_archive_dir, settings.market_timezone
    if args.action == "stats":
        days = day_stats(root, args.date, args.gap, tz)
        summary = {u: asdict(d) for u, d in days.items()}
        print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return 0 if days else 1
    tokens = args.token or None
    out = sys.stdout.buffer if args.output in (None, "-") else open(args.output, "wb")  # noqa: SIM115
    try:
        n = export_ticks(
            root, args.date, out, args.format, args.underlying, tokens, args.start, args.end, tz
        )
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()
    log.info("%d ticks exported", n)
    return 0 if n else 1


def cmd_status(services: Services, args: argparse.Namespace) -> int:
    """The fleet's health in a screen; exit 0 only when it is ``ok``.

    With ``--watch``: redrawn every ``--every`` seconds until Ctrl-C (exit 0), an API
    that does not answer shown as a problem until it answers again.
    """
    with _api(services, args) as api:
        if args.watch:

            def show() -> RenderableType:
                try:
                    summary = summarise(api.health(), services.clock.time())
                except ApiError as exc:
                    summary = unreachable(str(exc.__cause__ or exc))
                return render_watched(summary, _now(services), args.every)

            redraw(show, args.every, console())
            return 0
        doc = api.health()
    summary = summarise(doc, services.clock.time())
    if args.json:
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        console().print(render(summary))
    return 0 if summary.healthy else 1


def _tokens(api: ApiClient, words: list[str]) -> list[int]:
    """The tokens the words name: themselves, or a selection's listed contracts."""
    targets = parse_targets(words)
    if not isinstance(targets, Selection):
        return targets
    tokens = tokens_of(api.instruments(**targets.filters()))
    if not tokens:
        raise SelectionError(f"no listed contract matches {' '.join(words)}")
    return tokens


def cmd_subscribe(services: Services, args: argparse.Namespace) -> int:
    """Subscribe every named contract in one request (all or nothing, one reload)."""
    with _api(services, args) as api:
        done = api.subscribe(_tokens(api, args.targets))
    for record in done["subscriptions"]:
        print(f"subscribed {record['instrument_token']} {record['tradingsymbol'] or ''}")
    print(f"reload requested: {done['reload']['requested']}")
    return 0


def cmd_unsubscribe(services: Services, args: argparse.Namespace) -> int:
    """Unsubscribe every named contract; exit 0 when at least one was subscribed."""
    with _api(services, args) as api:
        done = [_unsubscribe_one(api, t) for t in _tokens(api, args.targets)]
    return 0 if any(done) else 1


def _unsubscribe_one(api: ApiClient, token: int) -> bool:
    try:
        done = api.unsubscribe(token)
    except ApiError as exc:
        if exc.status_code is None:
            raise  # unreachable: so is it for every other token
        print(f"tickfleet unsubscribe {token}: {exc}", file=sys.stderr)
        return False
    symbol = done["subscriptions"][0]["tradingsymbol"] or ""
    if not done["changed"]:
        print(f"tickfleet unsubscribe {token}: {symbol} was not subscribed", file=sys.stderr)
        return False
    print(f"unsubscribed {token} {symbol}")
    return True


def cmd_chain(services: Services, args: argparse.Namespace) -> int:
    """The option chain from the latest ticks, redrawn every ``--every`` seconds."""
    out = console()

    def show() -> tuple[Table, int]:
        chain = read_chain(services.publish_redis, services.channels(args.underlying), args.expiry)
        return chain_table(chain), len(chain.rows)

    if args.once:
        table, rows = show()
        out.print(table)
        return 0 if rows else 1
    redraw(lambda: show()[0], args.every, out)
    return 0


class _Parser(argparse.ArgumentParser):
    """Bad arguments in the two lines every failure gets (argparse would print the whole
    usage first): what is wrong, and where the help is. Its sub-commands' parsers are
    of this class too (``add_subparsers`` makes them so)."""

    def error(self, message: str) -> NoReturn:
        self.exit(SETUP, f"{self.prog}: {message}\n  see `{self.prog} -h`\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tickfleet", description=__doc__)
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
    tail.add_argument("--underlying", help="whose channels (default: the first configured)")
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
    _ticks_parser(sub)
    _api_parsers(sub)
    return parser


def _ticks_parser(sub: argparse._SubParsersAction[_Parser]) -> None:
    ticks = sub.add_parser("ticks", help="export or summarise a day of the tick archive")
    ticks.add_argument("action", choices=["export", "stats"])
    ticks.add_argument(
        "--date", type=date.fromisoformat, required=True, help="the market's date, YYYY-MM-DD"
    )
    ticks.add_argument("--underlying", help="export: only this underlying's ticks")
    ticks.add_argument("--token", type=int, action="append", help="export: only this token")
    market_time = "export: market time HH:MM"
    ticks.add_argument("--from", dest="start", type=clock_time.fromisoformat, help=market_time)
    ticks.add_argument(
        "--to", dest="end", type=clock_time.fromisoformat, help=f"{market_time}, excluded"
    )
    ticks.add_argument("--format", choices=FORMATS, default="jsonl", help="export's format")
    ticks.add_argument("--output", help="export: a file (default: standard output)")
    ticks.add_argument("--gap", type=float, default=60.0, help="stats: seconds that make a gap")


def _api_parsers(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The fleet's status and subscriptions (through the API), and the chain (from Redis)."""
    status = sub.add_parser("status", help="the fleet's health at a glance (exit 1 if not ok)")
    shown = status.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="the whole health document")
    shown.add_argument("--watch", action="store_true", help="redraw until Ctrl-C (exit 0)")
    status.add_argument(
        "--every", type=float, default=2.0, help="with --watch: seconds between redraws"
    )
    status.set_defaults(func=cmd_status)
    contracts = "tokens, or UNDERLYING EXPIRY STRIKE[-STRIKE] [CE|PE]"
    for name, func in (("subscribe", cmd_subscribe), ("unsubscribe", cmd_unsubscribe)):
        command = sub.add_parser(name, help=f"{name} {contracts}")
        command.add_argument("targets", nargs="+", metavar="CONTRACT", help=contracts)
        command.set_defaults(func=func)
    chain = sub.add_parser("chain", help="the option chain from the latest ticks, refreshing")
    chain.add_argument("--expiry", help="YYYY-MM-DD (default: the nearest streamed)")
    chain.add_argument("--underlying", help="whose chain (default: the first configured)")
    chain.add_argument("--every", type=float, default=1.0, help="seconds between redraws")
    chain.add_argument("--once", action="store_true", help="print the table once and exit")
    chain.set_defaults(func=cmd_chain)
    for name in ("status", "subscribe", "unsubscribe"):
        sub.choices[name].add_argument(
            "--api", help="the API's base URL (default: http://API_HOST:API_PORT)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an expected failure is said in a line or two (the traceback only
    at TICKFLEET_LOG_LEVEL=DEBUG), an unexpected one is a bug and shows its traceback."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (Exception, KeyboardInterrupt) as exc:
        failure = explain(exc)
        if failure is None:
            raise
        log.debug("tickfleet %s failed", args.command, exc_info=exc)
        print("\n".join(failure.lines(args.command)), file=sys.stderr)
        return failure.code


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "kite-sim":  # no database, no Redis: only the settings
        return kite_sim.run(settings, args)
    if args.command == "ticks":  # the archive's files only
        return cmd_ticks(settings, args)
    services = Services(settings)
    try:
        func: Command = args.func
        return func(services, args)
    finally:
        services.close()


if __name__ == "__main__":
    sys.exit(main())
