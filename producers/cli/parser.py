"""The ``tickfleet`` command line's arguments. Each command names the function that runs
it (``module:function``); ``producers.cli`` imports only that one's module, so a command
starts without loading what the others need (the database, Celery, Arrow, Kite's servers)."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from datetime import time as clock_time
from typing import NoReturn, TypeAlias

from producers.console.exit_codes import SETUP
from producers.kite_sim.arguments import add_arguments as add_kite_sim_arguments
from tickfleet.archive.formats import FORMATS
from tickfleet.kite.candles import Interval

DESCRIPTION = """The tickfleet command line: set up the database, reload, refresh, watch
ticks, print candles and export the tick archive; through the API: the fleet's status,
subscribe and unsubscribe."""


class _Parser(argparse.ArgumentParser):
    """Bad arguments in the two lines every failure gets (argparse would print the whole
    usage first): what is wrong, and where the help is. Its sub-commands' parsers are
    of this class too (``add_subparsers`` makes them so)."""

    def error(self, message: str) -> NoReturn:
        self.exit(SETUP, f"{self.prog}: {message}\n  see `{self.prog} -h`\n")


Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tickfleet", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    _database_parsers(sub)
    _ticks_parsers(sub)
    _api_parsers(sub)
    kite_sim = sub.add_parser("kite-sim", help="serve Kite's ticker and REST locally")
    add_kite_sim_arguments(kite_sim)
    kite_sim.set_defaults(run="producers.kite_sim.command:run")
    return parser


def _database_parsers(sub: Commands) -> None:
    """The commands that work on the database: set-up, instruments, reloads, candles."""
    admin = "producers.cli.admin"
    init = sub.add_parser("init-db", help="create or migrate the schema, load instruments if empty")
    init.add_argument("--refresh", action="store_true", help="reload instruments anyway")
    init.add_argument("--wait", type=float, default=30.0, help="seconds to wait for DB/Redis")
    init.set_defaults(run=f"{admin}:init_db")
    refresh = sub.add_parser("refresh-instruments", help="reload the instrument registry now")
    refresh.set_defaults(run=f"{admin}:refresh")
    reload = sub.add_parser("reload", help="request a subscription reload")
    reload.add_argument("--now", action="store_true", help="run immediately and wait")
    reload.add_argument(
        "--switch-database",
        action="store_true",
        help="with --now: move the fleet to this database on purpose",
    )
    reload.set_defaults(run=f"{admin}:reload")
    _history_parser(sub)


def _history_parser(sub: Commands) -> None:
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
    history.set_defaults(run="producers.cli.admin:history")


def _ticks_parsers(sub: Commands) -> None:
    """Live ticks from Redis (``tail``, ``chain``) and recorded ones (``ticks``)."""
    tail = sub.add_parser("tail", help="print live ticks from Redis")
    tail.add_argument("--token", type=int, action="append", help="only this token (repeatable)")
    tail.add_argument("--limit", type=int, help="stop after this many ticks")
    tail.add_argument("--seconds", type=float, help="stop after this long")
    tail.add_argument("--channel", choices=["options", "underlying", "all"], default="all")
    tail.add_argument("--underlying", help="whose channels (default: the first configured)")
    tail.set_defaults(run="producers.cli.live:tail")
    chain = sub.add_parser("chain", help="the option chain from the latest ticks, refreshing")
    chain.add_argument("--expiry", help="YYYY-MM-DD (default: the nearest streamed)")
    chain.add_argument("--underlying", help="whose chain (default: the first configured)")
    chain.add_argument("--every", type=float, default=1.0, help="seconds between redraws")
    chain.add_argument("--once", action="store_true", help="print the table once and exit")
    chain.set_defaults(run="producers.cli.live:chain")
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
    ticks.set_defaults(run="producers.cli.archive:ticks")


def _api_parsers(sub: Commands) -> None:
    """The fleet's status and subscriptions, through the API."""
    via_api = "producers.cli.through_api"
    status = sub.add_parser("status", help="the fleet's health at a glance (exit 1 if not ok)")
    shown = status.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="the whole health document")
    shown.add_argument("--watch", action="store_true", help="redraw until Ctrl-C (exit 0)")
    status.add_argument(
        "--every", type=float, default=2.0, help="with --watch: seconds between redraws"
    )
    status.set_defaults(run=f"{via_api}:status")
    contracts = "tokens, or UNDERLYING EXPIRY STRIKE[-STRIKE] [CE|PE]"
    for name in ("subscribe", "unsubscribe"):
        command = sub.add_parser(name, help=f"{name} {contracts}")
        command.add_argument("targets", nargs="+", metavar="CONTRACT", help=contracts)
        command.set_defaults(run=f"{via_api}:{name}")
    for name in ("status", "subscribe", "unsubscribe"):
        sub.choices[name].add_argument(
            "--api", help="the API's base URL (default: http://API_HOST:API_PORT)"
        )
