"""Kite's historical candles through the fleet's accounts: the local Kite REST server
answering in Kite's published shape, a real redis-server, the official client between.

Ranges, failover account by account, the fleet-wide rate per api key (two OS processes
hammering one local Kite), the cache of closed ranges, and the refusals a route maps to
400, 422 and 502.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import redis

from producers.kite_sim.local_rest import KiteRestServer, RestRequest
from tests.support.instants import FLEET_NOW
from tests.support.polling import wait_until
from tests.support.processes import FleetProcess
from tests.unit.history.samples import MINUTE_ROWS, OI_ROWS
from tickfleet.accounts.config import load_accounts
from tickfleet.config.settings import Settings
from tickfleet.history.kite_source import (
    History,
    KiteAccess,
    KiteRejectedError,
    KiteSource,
    KiteUnavailableError,
    UnknownAccountError,
)
from tickfleet.history.ratelimit import RateLimiter
from tickfleet.keyspace.keys import Keys
from tickfleet.kite.candles import Candle, CandleQuery, Interval, RangeTooLargeError
from tickfleet.kite.rest import KiteRestClient, KiteRestError
from tickfleet.runtime.clock import clock_from_settings

pytestmark = [pytest.mark.timeout(30), pytest.mark.processes]

IST = ZoneInfo("Asia/Kolkata")
UTC = ZoneInfo("UTC")
TOKENS = {"key_a": "tok-a-SECRET", "key_b": "tok-b-SECRET", "key_c": "tok-c-SECRET"}
ACCOUNTS = [
    {"account_id": "A", "api_key": "key_a", "access_token": "tok-a-SECRET"},
    {"account_id": "B", "api_key": "key_b", "access_token": "tok-b-SECRET"},
    {"account_id": "C", "api_key": "key_c", "access_token": "tok-c-SECRET"},
    {"account_id": "D", "api_key": "key_d"},  # no access token: no session to ask with
]
STOCK = 5633  # the minute mock's instrument
FUTURE = 13568258  # the open-interest mock's
DEC_15 = datetime(2017, 12, 15, 9, 15, tzinfo=IST)
DEC_4 = datetime(2019, 12, 4, 9, 15, tzinfo=IST)
HISTORICAL = "/instruments/historical/"


@pytest.fixture
def rest() -> Iterator[KiteRestServer]:
    with KiteRestServer(TOKENS) as server:
        server.set_candles(STOCK, "minute", MINUTE_ROWS)
        server.set_candles(FUTURE, "minute", OI_ROWS)
        yield server


@pytest.fixture
def settings(make_settings: Callable[..., Settings], rest: KiteRestServer) -> Settings:
    return make_settings(kite_api_url=rest.url, accounts=orjson.dumps(ACCOUNTS).decode())


def make_source(settings: Settings, client: redis.Redis, **access: Any) -> KiteSource:
    """The source an API process builds, with its timeouts shortened where a test says."""
    keys = Keys(settings.key_prefix)
    return KiteSource(
        client,
        keys,
        lambda: load_accounts(settings),
        RateLimiter(client, keys, settings.history_rate_per_second),
        KiteAccess(settings.kite_api_url, ZoneInfo(settings.market_timezone), **access),
        clock_from_settings(settings),
    )


@pytest.fixture
def source(settings: Settings, redis_client: redis.Redis) -> KiteSource:
    return make_source(settings, redis_client)


def historical(rest: KiteRestServer) -> list[RestRequest]:
    return [r for r in rest.request_log() if r.path.startswith(HISTORICAL)]


def six_minutes(token: int, start: datetime, *, oi: bool = False) -> CandleQuery:
    return CandleQuery(token, start, start + timedelta(minutes=5), Interval.MINUTE, oi=oi)


# --- (a) a range, fetched ------------------------------------------------------------------


def test_a_range_is_fetched_as_kite_published_it(rest: KiteRestServer, source: KiteSource) -> None:
    plain = source.fetch(six_minutes(STOCK, DEC_15))
    assert plain.candles == tuple(Candle.from_row(row, IST) for row in MINUTE_ROWS)
    assert plain.account_id == "A" and plain.failures == ()
    assert all(c.oi is None for c in plain.candles)
    with_oi = source.fetch(six_minutes(FUTURE, DEC_4, oi=True))
    assert with_oi.candles == tuple(Candle.from_row(row, IST) for row in OI_ROWS)
    assert [c.oi for c in with_oi.candles][:3] == [13667775, 13667775, 13758000]
    assert with_oi.candles[0].date == DEC_4 and with_oi.candles[0].date.tzinfo == IST
    without_oi = source.fetch(six_minutes(FUTURE, DEC_4))
    assert [c.volume for c in without_oi.candles] == [row[5] for row in OI_ROWS]
    assert all(c.oi is None for c in without_oi.candles)
    [first, _, _] = historical(rest)
    assert first.path == f"{HISTORICAL}{STOCK}/minute"
    assert first.api_key == "key_a" and first.kite_version == "3"
    assert dict(first.params) == {
        "from": "2017-12-15 09:15:00",
        "to": "2017-12-15 09:20:00",
        "interval": "minute",
        "continuous": "0",
        "oi": "0",
    }


def test_both_ends_are_sent_in_exchange_time_and_included(
    rest: KiteRestServer, source: KiteSource
) -> None:
    start = datetime(2017, 12, 15, 3, 46, tzinfo=UTC)  # 09:16 in Kolkata
    query = CandleQuery(STOCK, start, start + timedelta(minutes=2), Interval.MINUTE)
    answer = source.fetch(query)
    assert [c.date for c in answer.candles] == [DEC_15 + timedelta(minutes=m) for m in (1, 2, 3)]
    params = dict(historical(rest)[0].params)
    assert (params["from"], params["to"]) == ("2017-12-15 09:16:00", "2017-12-15 09:18:00")


# --- (b) failover ------------------------------------------------------------------------


def test_a_refused_and_a_rate_limited_account_fail_over_to_the_third(
    rest: KiteRestServer, source: KiteSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tickfleet.history.kite_source")
    rest.refuse(api_key="key_a")
    rest.fail(429, api_key="key_b")
    answer = source.fetch(six_minutes(STOCK, DEC_15))
    assert answer.account_id == "C"
    assert answer.candles == tuple(Candle.from_row(row, IST) for row in MINUTE_ROWS)
    [a, b] = answer.failures
    assert a.account_id == "A" and "KiteSessionRefused" not in a.reason
    assert "TokenException (HTTP 403)" in a.reason
    assert b.account_id == "B" and "HTTP 429" in b.reason
    assert [(r.api_key, r.status) for r in historical(rest)] == [
        ("key_a", 403),
        ("key_b", 429),
        ("key_c", 200),
    ]
    logged = [r.getMessage() for r in caplog.records]
    assert any("account A failed" in m and "HTTP 403" in m for m in logged)
    assert any("account B failed" in m and "HTTP 429" in m for m in logged)
    assert not any("SECRET" in m for m in logged + [f.reason for f in answer.failures])


def test_an_api_key_without_a_free_slot_hands_over_to_the_next_account(
    rest: KiteRestServer, settings: Settings, redis_client: redis.Redis
) -> None:
    source = make_source(settings, redis_client, slot_timeout=0.2)
    limiter = RateLimiter(redis_client, Keys(settings.key_prefix), 3)
    for _ in range(3):
        assert limiter.try_acquire("key_a") == 0.0  # key_a's second is spent elsewhere
    started = time.monotonic()
    answer = source.fetch(six_minutes(STOCK, DEC_15))
    assert time.monotonic() - started < 0.2  # the next slot was too far off to wait for
    assert answer.account_id == "B"
    assert "no request slot for api key key_a" in answer.failures[0].reason
    assert [r.api_key for r in historical(rest)] == ["key_b"]


# --- (c) the rate, fleet-wide --------------------------------------------------------------


def test_two_processes_never_exceed_the_rate_per_api_key(
    rest: KiteRestServer, settings: Settings, tmp_path: Path
) -> None:
    assert settings.history_rate_per_second == 3
    env = {**settings.to_env(), "PYTHONUNBUFFERED": "1"}
    # They start together once both are ready (tests.integration.history.hammer). Four
    # seconds hold four ~1.1 s windows (12 requests a key); nine leaves a window of slack
    # for a loaded machine (a 3-second run left no slack: 8 of 9 once in CI).
    argv = [sys.executable, "-m", "tests.integration.history.hammer", "2", "4"]
    hammers = [FleetProcess(f"hammer-{n}", argv, env, tmp_path) for n in range(2)]
    try:
        for hammer in hammers:
            assert hammer.proc.wait(timeout=20) == 0, hammer.log()
    finally:
        for hammer in hammers:
            hammer.stop()
    fetched = [orjson.loads(h.log_path.read_text().splitlines()[-1])["fetched"] for h in hammers]
    assert all(n >= 4 for n in fetched), fetched  # both hammered
    arrivals: dict[str, list[float]] = defaultdict(list)
    for request in historical(rest):
        assert request.status == 200
        arrivals[str(request.api_key)].append(request.received)
    assert sum(len(times) for times in arrivals.values()) == sum(fetched)
    assert set(arrivals) == {"key_a", "key_b"}
    for api_key, times in arrivals.items():
        times.sort()
        spans = [later - earlier for earlier, later in zip(times, times[3:], strict=False)]
        # No four requests of one key within a second, as Kite counts them: on arrival.
        assert min(spans) >= 1.0, (api_key, spans)
        # And the limiter, not the hammers' pace, set the rate: ~3 per 1.1 s window.
        assert min(spans) < 1.3, (api_key, spans)
        assert len(times) >= 9, (api_key, len(times))


# --- (d) the cache of closed ranges --------------------------------------------------------


def test_a_closed_range_is_asked_once_and_an_open_one_every_time(
    rest: KiteRestServer, source: KiteSource, redis_client: redis.Redis
) -> None:
    query = six_minutes(FUTURE, DEC_4, oi=True)
    first = source.fetch(query)
    second = source.fetch(query)
    assert second == History(first.candles, None) and second.cached
    assert len(historical(rest)) == 1
    [key] = redis_client.keys("tickfleet:history:candles:*")
    assert 86_000 < redis_client.ttl(key) <= 86_400
    source.fetch(six_minutes(FUTURE, DEC_4))  # without oi: another answer, asked for
    assert len(historical(rest)) == 2
    # The fleet's clock reads FLEET_NOW: a range ending at its minute has not closed.
    still_open = CandleQuery(STOCK, FLEET_NOW - timedelta(hours=1), FLEET_NOW, Interval.MINUTE)
    assert not source.fetch(still_open).cached
    assert not source.fetch(still_open).cached
    assert len(historical(rest)) == 4


# --- (e) refusals ---------------------------------------------------------------------------


def test_every_account_failing_names_each_ones_reason(
    rest: KiteRestServer, settings: Settings, redis_client: redis.Redis
) -> None:
    source = make_source(settings, redis_client, request_timeout=0.5)
    rest.fail(500, api_key="key_a")
    rest.slow(2.0, api_key="key_b")
    rest.refuse(api_key="key_c")
    with pytest.raises(KiteUnavailableError) as unavailable:
        source.fetch(six_minutes(STOCK, DEC_15))
    reasons = {f.account_id: f.reason for f in unavailable.value.failures}
    assert set(reasons) == {"A", "B", "C", "D"}
    assert "HTTP 500" in reasons["A"]
    assert "Timeout" in reasons["B"]
    assert "TokenException (HTTP 403)" in reasons["C"]
    assert "no valid session" in reasons["D"]
    message = str(unavailable.value)
    assert message.startswith(f"Kite could not serve minute candles of {STOCK}")
    assert all(f"{a}: " in message for a in "ABCD") and "SECRET" not in message
    # The slow answer is logged when it is given, after the client gave up on it.
    wait_until(lambda: len(historical(rest)) == 3, timeout=5, what="the slow answer")
    arrived = sorted(historical(rest), key=lambda r: r.received)
    assert [r.api_key for r in arrived] == ["key_a", "key_b", "key_c"]


def test_a_named_account_is_the_only_one_asked(rest: KiteRestServer, source: KiteSource) -> None:
    assert source.fetch(six_minutes(STOCK, DEC_15), account="B").account_id == "B"
    rest.fail(503, api_key="key_b")
    with pytest.raises(KiteUnavailableError) as unavailable:
        source.fetch(six_minutes(FUTURE, DEC_4), account="B")  # not cached
    assert [f.account_id for f in unavailable.value.failures] == ["B"]
    with pytest.raises(KiteUnavailableError, match="D: no valid session"):
        source.fetch(six_minutes(STOCK, FLEET_NOW), account="D")
    # A closed range already kept needs no session: nobody is asked.
    assert source.fetch(six_minutes(STOCK, DEC_15), account="D").cached
    assert [r.api_key for r in historical(rest)] == ["key_b", "key_b"]


def test_refusals_before_any_request(rest: KiteRestServer, source: KiteSource) -> None:
    too_long = CandleQuery(STOCK, DEC_15 - timedelta(days=61), DEC_15, Interval.MINUTE)
    with pytest.raises(RangeTooLargeError, match="at most 60 days per request") as refused:
        source.fetch(too_long)
    assert refused.value.limit_days == 60
    with pytest.raises(UnknownAccountError, match="'Z'"):
        source.fetch(six_minutes(STOCK, DEC_15), account="Z")
    assert historical(rest) == []


def test_a_request_kite_itself_refuses_is_not_failed_over(
    rest: KiteRestServer, source: KiteSource
) -> None:
    rest.fail(400)
    with pytest.raises(KiteRejectedError, match="HTTP 400"):
        source.fetch(six_minutes(STOCK, DEC_15))
    assert len(historical(rest)) == 1


def test_the_local_server_refuses_a_range_over_kites_limit_as_kite_does(
    rest: KiteRestServer,
) -> None:
    query = CandleQuery(STOCK, DEC_15 - timedelta(days=100, seconds=1), DEC_15, Interval.MINUTE_5)
    with (
        KiteRestClient("key_a", TOKENS["key_a"], root=rest.url, timeout=5) as kite,
        pytest.raises(KiteRestError, match="interval exceeds max limit: 100 days") as refused,
    ):
        kite.historical_data(query)
    assert refused.value.status == 400
