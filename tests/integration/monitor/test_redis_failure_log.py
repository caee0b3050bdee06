from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.redis_server import RedisServer
from tickfleet.keyspace.keys import Keys
from tickfleet.supervision.failures import RedisFailureLog, TaskFailure

pytestmark = pytest.mark.timeout(30)

KEY = Keys().task_failures


def failure(task: str, at: float = 1.0) -> TaskFailure:
    return TaskFailure(task, {"stream": "acct-7", "account": "ZX1234"}, "ValueError", "x", "tb", at)


@pytest.fixture
def quick_client() -> Iterator[Callable[[RedisServer], redis.Redis]]:
    """Clients that fail at once when the server is down (no retries)."""
    made: list[redis.Redis] = []

    def make(server: RedisServer) -> redis.Redis:
        client = redis.Redis(
            port=server.port,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_recent_returns_what_was_recorded_newest_first(redis_client: redis.Redis) -> None:
    log = RedisFailureLog(redis_client, KEY)
    for n in range(3):
        log.record(failure(f"t{n}", at=float(n)))

    assert [f.task for f in log.recent(10)] == ["t2", "t1", "t0"]
    assert [f.task for f in log.recent(2)] == ["t2", "t1"]
    assert log.recent(10)[0] == failure("t2", at=2.0)
    assert log.recent(0) == []


def test_the_list_is_capped_at_max_entries(redis_client: redis.Redis) -> None:
    log = RedisFailureLog(redis_client, KEY, max_entries=3)
    for n in range(5):
        log.record(failure(f"t{n}"))

    assert redis_client.llen(KEY) == 3
    assert [f.task for f in log.recent(10)] == ["t4", "t3", "t2"]


def test_unreadable_entries_are_skipped(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    log = RedisFailureLog(redis_client, KEY)
    log.record(failure("good"))
    redis_client.lpush(KEY, b"garbage")

    assert [f.task for f in log.recent()] == ["good"]
    assert any("skipping entry" in r.getMessage() for r in caplog.records)


def test_an_outage_is_survived_and_the_backlog_flushed_after_it(
    redis_server_factory: Callable[[], RedisServer],
    quick_client: Callable[[RedisServer], redis.Redis],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="tickfleet.supervision.failures")
    server = redis_server_factory()
    log = RedisFailureLog(quick_client(server), KEY)
    log.record(failure("before"))
    server.stop()

    log.record(failure("during-1"))
    log.record(failure("during-2"))

    assert [f.task for f in log.backlog] == ["during-1", "during-2"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "2 failure(s) kept in memory" in warnings[1].getMessage()

    server.start()
    log.record(failure("after"))

    assert log.backlog == []
    # The restarted server kept no data, so "before" is gone; the backlog is not.
    assert [f.task for f in log.recent()] == ["after", "during-2", "during-1"]
    assert any("reachable again" in r.getMessage() for r in caplog.records)


def test_the_backlog_is_bounded_and_flush_empties_it(
    redis_server_factory: Callable[[], RedisServer],
    quick_client: Callable[[RedisServer], redis.Redis],
) -> None:
    server = redis_server_factory()
    log = RedisFailureLog(quick_client(server), KEY, backlog_size=2)
    server.stop()
    for n in range(3):
        log.record(failure(f"t{n}"))

    assert [f.task for f in log.backlog] == ["t1", "t2"]
    assert log.dropped == 1
    assert log.flush() is False

    server.start()
    assert log.flush() is True
    assert [f.task for f in log.recent()] == ["t2", "t1"]


def test_recent_raises_while_redis_is_down(
    redis_server_factory: Callable[[], RedisServer],
    quick_client: Callable[[RedisServer], redis.Redis],
) -> None:
    server = redis_server_factory()
    log = RedisFailureLog(quick_client(server), KEY)
    server.stop()
    with pytest.raises(redis.ConnectionError):
        log.recent()
