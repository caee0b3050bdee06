"""The commands that go through the fleet's API: its status, subscribe and unsubscribe.
They need the settings (where the API is, its key, the clock) and nothing of the fleet's
own: no database, no Redis."""

from __future__ import annotations

import argparse
import sys

import orjson
from rich.console import RenderableType

from producers.api_client import ApiClient, ApiError
from producers.console.contracts import Selection, SelectionError, parse_targets, tokens_of
from producers.console.status import render, render_watched, summarise, unreachable
from producers.console.terminal import console, redraw
from tickfleet.config.settings import Settings
from tickfleet.market.hours import MarketHours
from tickfleet.runtime.clock import clock_from_settings


def status(settings: Settings, args: argparse.Namespace) -> int:
    """The fleet's health in a screen; exit 0 only when it is ``ok``.

    With ``--watch``: redrawn every ``--every`` seconds until Ctrl-C (exit 0), an API
    that does not answer shown as a problem until it answers again.
    """
    clock = clock_from_settings(settings)
    with ApiClient.from_settings(settings, args.api) as api:
        if args.watch:
            hours = MarketHours.from_settings(settings)

            def show() -> RenderableType:
                try:
                    summary = summarise(api.health(), clock.time())
                except ApiError as exc:
                    summary = unreachable(str(exc.__cause__ or exc))
                return render_watched(summary, hours.at(clock.time()), args.every)

            redraw(show, args.every, console())
            return 0
        doc = api.health()
    summary = summarise(doc, clock.time())
    if args.json:
        print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    else:
        console().print(render(summary))
    return 0 if summary.healthy else 1


def subscribe(settings: Settings, args: argparse.Namespace) -> int:
    """Subscribe every named contract in one request (all or nothing, one reload)."""
    with ApiClient.from_settings(settings, args.api) as api:
        done = api.subscribe(_tokens(api, args.targets))
    for record in done["subscriptions"]:
        print(f"subscribed {record['instrument_token']} {record['tradingsymbol'] or ''}")
    print(f"reload requested: {done['reload']['requested']}")
    return 0


def unsubscribe(settings: Settings, args: argparse.Namespace) -> int:
    """Unsubscribe every named contract; exit 0 when at least one was subscribed."""
    with ApiClient.from_settings(settings, args.api) as api:
        done = [_unsubscribe_one(api, t) for t in _tokens(api, args.targets)]
    return 0 if any(done) else 1


def _tokens(api: ApiClient, words: list[str]) -> list[int]:
    """The tokens the words name: themselves, or a selection's listed contracts."""
    targets = parse_targets(words)
    if not isinstance(targets, Selection):
        return targets
    tokens = tokens_of(api.instruments(**targets.filters()))
    if not tokens:
        raise SelectionError(f"no listed contract matches {' '.join(words)}")
    return tokens


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
