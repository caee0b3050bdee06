"""A subscriber in a process of its own, for the benches that time what consumers hear.

    python bench/subscriber.py URL CHANNEL EXPECT

Subscribes to ``CHANNEL``, prints ``ready``, then, once ``EXPECT`` messages arrived (or
ten minutes passed), one JSON line: the ``time.monotonic()`` each was heard at. Linux's
monotonic clock is the system's, so the figures compare with the publisher process's.
It imports only redis-py: it starts in a fraction of a second even on a loaded machine.
"""

from __future__ import annotations

import json
import sys
import time

import redis


def main() -> None:
    url, channel, expect = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = redis.Redis.from_url(url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(channel)
    pubsub.get_message(timeout=1)
    print("ready", flush=True)
    at: list[float] = []
    deadline = time.monotonic() + 600
    while len(at) < expect and time.monotonic() < deadline:
        if pubsub.get_message(timeout=0.5):
            at.append(time.monotonic())
    pubsub.close()
    client.close()
    print(json.dumps(at), flush=True)


if __name__ == "__main__":
    main()
