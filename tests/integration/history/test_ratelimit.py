"""The fleet-wide rate limiter per api key, on a real redis-server."""

from __future__ import annotations

import time
from typing import cast

import pytest
import redis

from tickfleet.history.ratelimit import RateLimiter, RateLimitTimeoutError
from tickfleet.keyspace.keys import Keys

pytestmark = pytest.mark.timeout(20)
KEYS = Keys()


def test_a_full_window_makes_the_next_request_wait_for_its_oldest_to_leave(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, KEYS, 3, window=1.0, guard=0.1)
    started = time.monotonic()
    assert [limiter.try_acquire("key_a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.try_acquire("key_a")
    assert 1.1 - (time.monotonic() - started) - 0.01 <= wait <= 1.1
    assert redis_client.zcard(KEYS.history_rate("key_a")) == 3  # a refusal takes no slot
    assert 0 < redis_client.pttl(KEYS.history_rate("key_a")) <= 2100
    assert limiter.try_acquire("key_b") == 0.0  # every api key has its own window


def scored(client: redis.Redis, log: str) -> list[tuple[bytes, float]]:
    """The log's members and their admission times (Redis's clock, µs), oldest first."""
    return cast(list[tuple[bytes, float]], client.zrange(log, 0, -1, withscores=True))


# serial: "no wait" is 50 ms here, less than one Redis round trip on a loaded machine.
@pytest.mark.serial
def test_acquire_waits_for_a_slot_within_its_timeout_and_never_past_it(
    redis_client: redis.Redis,
) -> None:
    limiter = RateLimiter(redis_client, KEYS, 2, window=0.5, guard=0.1)
    assert limiter.acquire("key_a", timeout=0.1) < 0.05
    assert limiter.acquire("key_a", timeout=0.1) < 0.05
    started = time.monotonic()
    with pytest.raises(RateLimitTimeoutError, match="no request slot for api key key_a"):
        limiter.acquire("key_a", timeout=0.3)
    assert time.monotonic() - started < 0.05  # the slot is past the deadline: no wait
    log = KEYS.history_rate("key_a")
    (oldest, _), _ = scored(redis_client, log)
    waited = limiter.acquire("key_a", timeout=2.0)
    assert 0.45 <= waited <= 0.9
    # The oldest has left, and whatever stays is within one window of the newest (the
    # second stays if it came later than the oldest by more than the wait overshot).
    after = scored(redis_client, log)
    newest = max(score for _, score in after)
    assert oldest not in {member for member, _ in after}
    assert all(newest - score < limiter.window * 1_000_000 for _, score in after)


def test_a_limiter_admits_at_least_one_request() -> None:
    with pytest.raises(ValueError, match="at least one"):
        RateLimiter(redis.Redis(), KEYS, 0)
