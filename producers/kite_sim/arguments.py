"""``tickfleet kite-sim``'s arguments, apart from the servers so that the command line
builds its parser without loading them."""

from __future__ import annotations

import argparse

DEFAULT_API_KEY = "sim_api_key"
DEFAULT_ACCESS_TOKEN = "sim_access_token"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the api key clients use")
    parser.add_argument(
        "--access-token",
        default=DEFAULT_ACCESS_TOKEN,
        help="the access token clients must present (printed only with --show-token)",
    )
    parser.add_argument("--ticker-port", type=int, default=0, help="0: a free port")
    parser.add_argument("--rest-port", type=int, default=0, help="0: a free port")
    parser.add_argument(
        "--spot", type=float, help="the NIFTY level (default TICKFLEET_MOCK_UNDERLYING_PRICE)"
    )
    parser.add_argument(
        "--interval",
        type=float,
        help="seconds between frames (default TICKFLEET_MOCK_TICK_INTERVAL_SECONDS)",
    )
    parser.add_argument(
        "--show-token", action="store_true", help="print KITE_ACCESS_TOKEN with the rest"
    )
