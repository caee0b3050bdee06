"""The ``tickfleet`` command line: set up the database, reload, refresh, watch ticks,
print candles, export the tick archive; through the API: the fleet's status, subscribe
and unsubscribe.

Exit status: 0 on success; 1 when a reload did not run, ``tail`` printed no tick,
``history`` was refused, the fleet is not healthy (``status``), or ``chain --once`` found
no streamed strike. A command that meets an expected failure says in a line or two what
failed, why and what to do, and exits 1 when it may succeed later as it is (Redis, the
API, the database or Kite down or refusing), 2 when the arguments or the setup must
change first (``producers.console.failures``). The redrawn screens (``status --watch``,
``chain``) end with Ctrl-C and exit 0.

Each command is a function ``(settings, arguments) -> exit status`` in the module of its
kind (``admin``, ``live``, ``archive``, ``through_api``); only the chosen command's module
is imported, so ``tickfleet status`` starts in a third of the time the whole fleet's
imports would take.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from producers.cli.parser import build_parser
from tickfleet.config.settings import Settings, get_settings

Command = Callable[[Settings, argparse.Namespace], int]
log = logging.getLogger("tickfleet.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; an expected failure is said in a line or two (the traceback only
    at TICKFLEET_LOG_LEVEL=DEBUG), an unexpected one is a bug and shows its traceback."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (Exception, KeyboardInterrupt) as exc:
        # Only a failure pays for importing every failure it may be: Kite, SQL, Celery...
        from producers.console.failures import explain  # noqa: PLC0415

        failure = explain(exc)
        if failure is None:
            raise
        log.debug("tickfleet %s failed", args.command, exc_info=exc)
        print("\n".join(failure.lines(args.command)), file=sys.stderr)
        return failure.code


def command(name: str) -> Command:
    """The function ``module:function`` names, its module imported now."""
    module, _, function = name.partition(":")
    found: Command = getattr(importlib.import_module(module), function)
    return found


def _run(args: argparse.Namespace) -> int:
    settings = get_settings()
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    return command(args.run)(settings, args)
