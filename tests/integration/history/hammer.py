"""One API process's share of the fleet-wide rate test: fetch candles through
``KiteSource`` as fast as it lets, alternating two named accounts, until a deadline.

    python -m tests.integration.history.hammer HAMMERS SECONDS

Settings (Redis, Kite's root, the accounts, the rate) come from the environment, as in
an API process. Once ready, it counts itself in Redis and starts when all HAMMERS have
(a wall-clock start time left a slow starter on a loaded machine three requests of 26),
so that they hammer together; it prints how many fetches it made.
"""

from __future__ import annotations

import itertools
import sys
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import redis

from tickfleet.config.settings import get_settings
from tickfleet.history.kite_source import KiteSource
from tickfleet.kite.candles import CandleQuery, Interval
from tickfleet.runtime.clock import clock_from_settings

TOKEN = 256265
ACCOUNTS = ("A", "B")
READY_KEY = "test:hammers-ready"
WAIT_FOR_OTHERS = 30.0  # seconds, then start anyway: the test's counts will say so


def _start_together(client: redis.Redis, hammers: int) -> None:
    client.incr(READY_KEY)
    deadline = time.monotonic() + WAIT_FOR_OTHERS
    while int(client.get(READY_KEY) or 0) < hammers and time.monotonic() < deadline:
        time.sleep(0.005)


def main(argv: list[str]) -> int:
    hammers, seconds = int(argv[1]), float(argv[2])
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    source = KiteSource.from_settings(settings, client)
    now = clock_from_settings(settings).time()
    end = datetime.fromtimestamp(now, ZoneInfo(settings.market_timezone)) + timedelta(hours=1)
    query = CandleQuery(TOKEN, end - timedelta(hours=2), end, Interval.MINUTE)  # still open
    _start_together(client, hammers)
    deadline = time.monotonic() + seconds
    fetched = 0
    for account in itertools.cycle(ACCOUNTS):
        if time.monotonic() >= deadline:
            break
        source.fetch(query, account)
        fetched += 1
    client.close()
    sys.stdout.write(orjson.dumps({"fetched": fetched}).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
