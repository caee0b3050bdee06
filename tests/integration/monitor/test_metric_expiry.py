"""A gone process's gauges leave /metrics within the bound; fleet totals never go back.

Real redis-server; the process test runs real processes that record like a stream does
(a breaker reporting ``redis_circuit_state`` per worker, a counter, an asyncio flusher),
SIGKILLs one, and reads what ``/metrics`` would render through ``FleetCollector``.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import CollectorRegistry, generate_latest
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.processes import FleetProcess
from tickfleet.keyspace.keys import Keys
from tickfleet.metrics.buffer import GAUGE_TTL_FLUSHES, MetricsBuffer, metrics_prefix
from tickfleet.metrics.fleet import FleetCollector, read_counter, read_gauges
from tickfleet.metrics.flush import MetricsFlusher

pytestmark = pytest.mark.timeout(60)

PREFIX = "test:"
GAUGE = "redis_circuit_state"
FLUSH_SECONDS = 0.2
BOUND_SECONDS = GAUGE_TTL_FLUSHES * FLUSH_SECONDS

# A process recording like a stream: its breaker sets the state gauge under its worker
# label, it counts into a fleet total, and an asyncio flusher writes both every period.
CHILD = """
import asyncio, sys
import redis.asyncio as aioredis
from tickfleet.breaker.local import LocalBreaker
from tickfleet.metrics.buffer import MetricsBuffer
from tickfleet.metrics.flush import AsyncMetricsFlusher

url, prefix, worker, every = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

async def main() -> None:
    buffer = MetricsBuffer()
    LocalBreaker("publish", metrics=buffer, worker=worker)
    client = aioredis.Redis.from_url(url)
    flusher = AsyncMetricsFlusher(buffer, client, prefix, every)
    while True:
        buffer.inc("redis_publish_total", 10)
        await flusher.flush()
        print("flushed", flush=True)
        await asyncio.sleep(every)

asyncio.run(main())
"""


def scrape(client: redis.Redis) -> str:
    registry = CollectorRegistry()
    registry.register(FleetCollector(client, PREFIX))
    return generate_latest(registry).decode()


def workers_in(text: str) -> set[str]:
    return set(re.findall(r'redis_circuit_state\{breaker="[^"]+",worker="([^"]+)"\}', text))


def published(text: str) -> float:
    found = re.search(r"^redis_publish_total (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def recorder(redis_url: str, tmp_path: Path) -> Iterator[Callable[[str], FleetProcess]]:
    started: list[FleetProcess] = []

    def start(worker: str) -> FleetProcess:
        argv = [sys.executable, "-c", CHILD, redis_url, PREFIX, worker, str(FLUSH_SECONDS)]
        process = FleetProcess(worker, argv, {}, tmp_path)
        started.append(process)
        process.wait_for_log("flushed")
        return process

    yield start
    for process in started:
        process.stop()


def test_a_killed_workers_gauge_leaves_metrics_and_the_total_stays(
    redis_client: redis.Redis, recorder: Callable[[str], FleetProcess]
) -> None:
    doomed, survivor = recorder("doomed:1"), recorder("survivor:2")
    assert workers_in(scrape(redis_client)) == {"doomed:1", "survivor:2"}

    doomed.kill()
    killed_at = time.monotonic()
    totals = [published(scrape(redis_client))]
    while "doomed:1" in workers_in(text := scrape(redis_client)):
        assert time.monotonic() - killed_at < BOUND_SECONDS + 3.0, "dead worker's gauge stays"
        assert "survivor:2" in workers_in(text)
        totals.append(published(text))
        time.sleep(0.05)
    gone_after = time.monotonic() - killed_at

    # The survivor is still reported for several more bounds; the total only grows.
    for _ in range(10):
        text = scrape(redis_client)
        assert workers_in(text) == {"survivor:2"}
        totals.append(published(text))
        time.sleep(BOUND_SECONDS / 4)
    assert totals == sorted(totals) and totals[-1] > totals[0] > 0
    assert survivor.alive()
    print(f"dead worker's gauge gone {gone_after:.2f} s after SIGKILL (bound {BOUND_SECONDS} s)")


def test_a_gauge_lives_while_flushed_and_expires_after_its_ttl(redis_client: redis.Redis) -> None:
    buffer = MetricsBuffer()
    buffer.set_gauge(GAUGE, 1.0, {"worker": "w1", "breaker": "publish"})
    buffer.flush(redis_client, metrics_prefix(PREFIX), gauge_ttl=0.4)
    assert read_gauges(redis_client, PREFIX, GAUGE) == {'["w1","publish"]': 1.0}

    time.sleep(0.25)
    buffer.flush(redis_client, metrics_prefix(PREFIX), gauge_ttl=0.4)  # refreshed
    time.sleep(0.25)
    assert read_gauges(redis_client, PREFIX, GAUGE) == {'["w1","publish"]': 1.0}

    time.sleep(0.3)
    assert read_gauges(redis_client, PREFIX, GAUGE) == {}
    keys = Keys(PREFIX).metrics
    assert redis_client.hlen(keys.series(GAUGE)) == 0
    assert redis_client.zcard(keys.deadlines(GAUGE)) == 0


def test_any_flush_deletes_the_series_of_gone_processes(redis_client: redis.Redis) -> None:
    """Without a scrape, expired series still do not pile up in Redis."""
    gone, live = MetricsBuffer(), MetricsBuffer()
    gone.set_gauge(GAUGE, 2.0, {"worker": "gone", "breaker": "publish"})
    gone.flush(redis_client, metrics_prefix(PREFIX), gauge_ttl=0.1)
    time.sleep(0.2)
    live.set_gauge(GAUGE, 0.0, {"worker": "live", "breaker": "publish"})
    live.flush(redis_client, metrics_prefix(PREFIX), gauge_ttl=5.0)
    series = redis_client.hgetall(Keys(PREFIX).metrics.series(GAUGE))
    assert series == {b'["live","publish"]': b"0.0"}


def test_a_series_without_a_deadline_is_dropped(redis_client: redis.Redis) -> None:
    """Series written before gauges expired (no deadline) do not stay forever."""
    redis_client.hset(Keys(PREFIX).metrics.series(GAUGE), '["old-worker:7"]', "1.0")
    assert workers_in(scrape(redis_client)) == set()
    assert redis_client.exists(Keys(PREFIX).metrics.series(GAUGE)) == 0


def test_a_clean_stop_retires_the_gauges_and_keeps_the_counts(redis_client: redis.Redis) -> None:
    buffer = MetricsBuffer()
    flusher = MetricsFlusher(buffer, redis_client, PREFIX, every_seconds=60.0)
    buffer.set_gauge(GAUGE, 1.0, {"worker": "w1", "breaker": "publish"})
    flusher.flush()
    assert workers_in(scrape(redis_client)) == {"w1"}

    buffer.inc("redis_publish_total", 3)
    flusher.stop()
    assert workers_in(scrape(redis_client)) == set()
    assert read_counter(redis_client, PREFIX, "redis_publish_total") == 3.0


def test_a_failed_flush_keeps_the_counts_and_the_gauge(redis_client: redis.Redis) -> None:
    buffer = MetricsBuffer()
    buffer.inc("redis_publish_total", 2)
    buffer.set_gauge(GAUGE, 1.0, {"worker": "w1", "breaker": "publish"})
    dead = redis.Redis(host="127.0.0.1", port=9, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.ConnectionError):
        buffer.flush(dead, metrics_prefix(PREFIX))
    buffer.flush(redis_client, metrics_prefix(PREFIX))
    assert read_counter(redis_client, PREFIX, "redis_publish_total") == 2.0
    assert read_gauges(redis_client, PREFIX, GAUGE) == {'["w1","publish"]': 1.0}
