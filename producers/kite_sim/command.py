"""``tickfleet kite-sim``: Kite's ticker and REST APIs on this machine, for demos.

It serves the fleet's offline universe of every configured underlying (today's
contracts, NIFTY's strikes around ``--spot``, the others' around their own levels) under
one api key and access token: the instruments dump and quotes over
REST, ticks over the WebSocket. Prices start where the simulated market's smile and
Black-Scholes put them, so a fleet pointed at it with the printed variables sees a
plausible chain, then each price walks on its own. It runs until Ctrl-C or SIGTERM and
stops both servers.

The access token is printed only with ``--show-token``, and never logged.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime
from types import FrameType

import numpy as np

from producers.kite_sim.local_rest import KiteRestServer
from producers.kite_sim.local_server import KiteServer
from tickfleet.config.settings import Settings
from tickfleet.instruments.model import Instrument
from tickfleet.instruments.universe import OPTION_TICK_SIZE, UniverseSpec, generate_universe
from tickfleet.market.blackscholes import price
from tickfleet.market.expiry import years_to_expiry
from tickfleet.market.hours import MarketHours
from tickfleet.market.options import round_to_tick
from tickfleet.market.smile import SmileSpec, smile_iv
from tickfleet.runtime.clock import Clock, clock_from_settings

_log = logging.getLogger(__name__)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; 0 then, 1 when a port cannot be had."""
    clock = clock_from_settings(settings)
    now = MarketHours.from_settings(settings).at(clock.time())
    universe: list[Instrument] = []
    prices: dict[int, float] = {}
    levels: dict[str, float] = {}
    for spec in UniverseSpec.configured(settings):
        name = spec.underlying.name
        levels[name] = (args.spot if name == "NIFTY" else None) or spec.spot
        rows = generate_universe(now.date(), levels[name], spec)
        universe += rows
        prices.update(opening_prices(rows, levels[name], now, settings))
    try:
        with _servers(settings, args, clock, universe, prices) as (ticker, rest):
            _announce(args, ticker, rest, len(universe), levels)
            _wait_for_stop()
    except OSError as exc:
        print(f"tickfleet kite-sim: {exc}", file=sys.stderr)
        return 1
    _log.info("kite-sim stopped")
    return 0


def opening_prices(
    universe: Sequence[Instrument], spot: float, now: datetime, settings: Settings
) -> dict[int, float]:
    """Each instrument's first price by token: the index at ``spot``, each option at its
    Black-Scholes value on the simulated market's smile, on the option tick."""
    options = [(i, i.expiry) for i in universe if i.is_option and i.expiry is not None]
    strikes = np.array([o.strike for o, _ in options], dtype=np.float64)
    tz, close = settings.market_timezone, settings.market_close
    years = np.array([years_to_expiry(now, e, tz, close) for _, e in options], dtype=np.float64)
    is_call = np.array([o.instrument_type == "CE" for o, _ in options])
    iv = smile_iv(SmileSpec.from_settings(settings), strikes, spot, years)
    values = price(spot, strikes, years, iv, is_call, settings.mock_risk_free_rate)
    ticked = round_to_tick(values, OPTION_TICK_SIZE).tolist()
    prices = {i.instrument_token: round(spot, 2) for i in universe if i.is_index}
    prices.update(zip((o.instrument_token for o, _ in options), ticked, strict=True))
    return prices


@contextlib.contextmanager
def _servers(
    settings: Settings,
    args: argparse.Namespace,
    clock: Clock,
    universe: Sequence[Instrument],
    prices: dict[int, float],
) -> Iterator[tuple[KiteServer, KiteRestServer]]:
    """Both servers started with one account, stopped on leaving (the ticker last)."""
    credentials = {args.api_key: args.access_token}
    interval = args.interval or settings.mock_tick_interval_seconds
    rest = KiteRestServer(credentials, instruments=universe, port=args.rest_port, clock=clock.time)
    for instrument in universe:
        key = f"{instrument.exchange}:{instrument.tradingsymbol}"
        rest.set_price(key, prices[instrument.instrument_token])
    ticker = KiteServer(
        credentials,
        instruments=prices,
        port=args.ticker_port,
        interval=interval,
        heartbeat_interval=max(interval, 1.0),
        seed=settings.mock_seed if settings.mock_seed is not None else 0,
        clock=clock.time,
    )
    with ticker, rest:
        yield ticker, rest


def _announce(
    args: argparse.Namespace,
    ticker: KiteServer,
    rest: KiteRestServer,
    count: int,
    levels: dict[str, float],
) -> None:
    """The variables that point a fleet here, on stdout; the token only when asked."""
    at = ", ".join(f"{name} at {level:g}" for name, level in levels.items())
    token = (
        f"KITE_ACCESS_TOKEN={args.access_token}"
        if args.show_token
        else "# KITE_ACCESS_TOKEN: the --access-token given (--show-token prints it)"
    )
    print(
        f"# tickfleet kite-sim: {count} instruments, {at}; Ctrl-C stops it\n"
        f"KITE_TICKER_URL={ticker.url}\n"
        f"KITE_API_URL={rest.url}\n"
        f"KITE_API_KEY={args.api_key}\n"
        f"{token}",
        flush=True,
    )
    _log.info(
        "kite-sim serving %d instruments: ticker %s, REST %s, api key %s",
        count,
        ticker.url,
        rest.url,
        args.api_key,
    )


def _wait_for_stop() -> None:
    """Block until SIGINT or SIGTERM, then put their previous handlers back."""
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
