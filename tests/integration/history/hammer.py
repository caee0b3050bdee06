"""One API process's share of the fleet-wide rate test: fetch candles through
``KiteSource`` as fast as it lets, alternating two named accounts, until a deadline.

    python -m tests.integration.history.hammer START_AT SECONDS

Settings (Redis, Kite's root, the accounts, the rate) come from the environment, as in
an API process. It starts at the wall time START_AT, so that two of these, started one
after the other, hammer together; it prints how many fetches it made.
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


def main(argv: list[str]) -> int:
    start_at, seconds = float(argv[1]), float(argv[2])
    settings = get_settings()
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    source = KiteSource.from_settings(settings, client)
    now = clock_from_settings(settings).time()
    end = datetime.fromtimestamp(now, ZoneInfo(settings.market_timezone)) + timedelta(hours=1)
    query = CandleQuery(TOKEN, end - timedelta(hours=2), end, Interval.MINUTE)  # still open
    time.sleep(max(0.0, start_at - time.time()))
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
