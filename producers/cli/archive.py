"""``tickfleet ticks``: a day of the tick archive exported or summarised. Reads files
only: no Redis, no database."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import asdict

import orjson

from tickfleet.archive.export import day_stats, export_ticks
from tickfleet.config.settings import Settings

log = logging.getLogger("tickfleet.cli")


def ticks(settings: Settings, args: argparse.Namespace) -> int:
    """``export`` (payloads as published, in publish order) or ``stats`` (a summary)."""
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
