"""The commands that read live ticks from the publish Redis: ``tail`` prints them as they
are published, ``chain`` draws the option chain from the latest ones."""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import closing

import orjson
import redis
from rich.table import Table

from producers.console.chain import chain_table
from producers.console.terminal import console, redraw
from tickfleet.chain.option_chain import read_chain
from tickfleet.config.settings import Settings
from tickfleet.ticks.subscription import NOT_A_TICK, TickListener
from tickfleet.wiring.services import Services


def tail(settings: Settings, args: argparse.Namespace) -> int:
    """Print live ticks as JSON lines, optionally only some tokens, until --limit or --seconds."""
    with closing(Services(settings)) as services:
        channels = services.channels(args.underlying)
    wanted = {
        "options": [channels.options],
        "underlying": [channels.underlying],
        "all": [channels.options, channels.underlying],
    }[args.channel]
    tokens = set(args.token or [])
    url = settings.effective_publish_redis_url
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


def chain(settings: Settings, args: argparse.Namespace) -> int:
    """The option chain from the latest ticks, redrawn every ``--every`` seconds."""
    out = console()
    with closing(Services(settings)) as services:
        where = services.channels(args.underlying)

        def show() -> tuple[Table, int]:
            latest = read_chain(services.publish_redis, where, args.expiry)
            return chain_table(latest), len(latest.rows)

        if args.once:
            table, rows = show()
            out.print(table)
            return 0 if rows else 1
        redraw(lambda: show()[0], args.every, out)
    return 0
