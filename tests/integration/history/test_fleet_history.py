"""``GET /history`` from the fleet's own bars: a real simulated fleet (API, control worker,
two stream workers, beat) with ten-second bars, a subscriber hearing every tick, a
SIGKILLed stream worker; the bars store on SQLite and PostgreSQL; Kite's candles before
the fleet's first bar from the local Kite REST server; every refusal the route makes."""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
import redis
import redis.asyncio as aioredis

from producers.kite_sim.local_rest import KiteRestServer
from tests.conftest import Fleet
from tests.support.instants import FLEET_NOW
from tests.support.processes import BIN, run_text
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings
from tickfleet.history.bar_store import BarStore, keep_bars
from tickfleet.history.bars import BarBuilder, BarFlusher
from tickfleet.instruments import Instrument
from tickfleet.keyspace.keys import Keys
from tickfleet.storage.sql import make_engine, make_session_factory

pytestmark = pytest.mark.timeout(180)

IST = ZoneInfo("Asia/Kolkata")
BAR = 15.0  # a failover takes about 5 s, and up to 12 s on a machine loaded with other fleets
TICK = 0.5
FLUSH = 0.1


# --- the store ------------------------------------------------------------------------------


@pytest.fixture
def store(
    make_settings: Callable[..., Settings], database_url: str
) -> Iterator[tuple[Settings, BarStore]]:
    settings = make_settings(database_url=database_url)
    seed_universe(settings, with_expired=False)
    engine = make_engine(database_url)
    try:
        yield settings, BarStore(make_session_factory(engine))
    finally:
        engine.dispose()


async def _flush(builder: BarBuilder, url: str, key: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        return await BarFlusher(builder, client, key, 1.0).flush()
    finally:
        await client.aclose()


def test_bars_move_from_redis_to_sql_merge_read_back_with_volume_and_prune(
    store: tuple[Settings, BarStore], redis_client: redis.Redis
) -> None:
    settings, bars = store
    keys = Keys(settings.key_prefix)
    t0 = FLEET_NOW.timestamp()
    old, new = BarBuilder(60), BarBuilder(60)  # two stream workers across a handover
    for i in range(30):  # the first worker: 30 s of minute one
        old.add(9, t0 + i, 100.0 + i, 1000 + 10 * i, 5, True)
    assert asyncio.run(_flush(old, settings.redis_url, keys.history_bars)) == 1
    assert keep_bars(redis_client, keys, bars, t0, 30) == 1
    for i in range(30, 90):  # the second: the rest of minute one and all of minute two
        new.add(9, t0 + i, 200.0 - i, 1000 + 10 * i, 6, True)
    asyncio.run(_flush(new, settings.redis_url, keys.history_bars))
    asyncio.run(_flush(old, settings.redis_url, keys.history_bars))  # nothing new: no-op
    assert keep_bars(redis_client, keys, bars, t0, 30) == 2
    assert redis_client.exists(keys.history_bars, keys.history_bars_taken) == 0

    one, two = bars.read(9, int(t0), int(t0) + 60)
    assert (one.open, one.high, one.low, one.close) == (100.0, 170.0, 100.0, 141.0)
    assert one.volume == 1590 - 1000 and one.oi == 6 and one.is_mock
    assert (two.open, two.close) == (140.0, 111.0)
    assert two.volume == 1890 - 1590  # less the previous bar's cumulative volume
    assert bars.first_start(9) == int(t0)
    assert bars.prune(int(t0) + 60) == 1
    assert [b.start for b in bars.read(9, 0, 2**40)] == [int(t0) + 60]


# --- the fleet ------------------------------------------------------------------------------


@dataclass
class History:
    fleet: Fleet
    api: httpx.Client
    ticks: TickCollector
    options: list[Instrument]
    workers: list[Any]

    def owner(self, stream: str) -> Any:
        status = self.api.get("/health").json()["streams"][stream]
        return next(w for w in self.workers if status["hostname"].startswith(w.name + "@"))

    def get(self, **params: Any) -> httpx.Response:
        return self.api.get("/history", params=params)


@pytest.fixture
def history(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> Iterator[History]:
    settings = make_settings(
        feed="mock",
        mock_tick_interval_seconds=TICK,
        **FAST_FLEET,
        stream_start_grace_seconds=4.0,
        history_bar_seconds=BAR,
        history_bar_flush_seconds=FLUSH,
        history_bar_move_seconds=1.0,
    )
    options = seed_universe(settings, with_expired=False)
    fleet = fleet_factory(settings)
    with fleet.starting():
        _, url = fleet.api()
        fleet.control_worker()
        workers = [fleet.stream_worker("stream-a"), fleet.stream_worker("stream-b")]
        fleet.beat()
    collector = TickCollector(settings.redis_url).start()
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            yield History(fleet, api, collector, options, workers)
    finally:
        collector.stop()


def _nearest_pair(options: list[Instrument]) -> list[Instrument]:
    expiry = min(o.expiry for o in options if o.expiry is not None)
    near = [o for o in options if o.expiry == expiry]
    strike = min({o.strike for o in near}, key=lambda k: abs(k - 24000))
    return sorted((o for o in near if o.strike == strike), key=lambda o: o.instrument_type)


def _epoch(tick: dict[str, Any]) -> float:
    return datetime.fromisoformat(tick["timestamp"]).timestamp()


def _heard_bars(ticks: list[dict[str, Any]], token: int) -> dict[float, tuple[float, ...]]:
    """OHLC per bar start of the ticks the subscriber heard (in publishing order)."""
    prices: dict[float, list[float]] = defaultdict(list)
    for tick in ticks:
        if tick["instrument_token"] == token:
            at = _epoch(tick)
            prices[at - at % BAR].append(tick["last_price"])
    return {s: (p[0], max(p), min(p), p[-1]) for s, p in prices.items()}


def _iso(epoch: float, tz: Any = IST) -> str:
    return datetime.fromtimestamp(epoch, tz).isoformat()


def _kill_between_ticks(history: History) -> tuple[float, float]:
    """SIGKILL the option stream's worker early in a bar, just after a tick round was
    heard and flushed (the flush runs every 0.1 s, the next round comes 0.5 s later): a
    kill loses what the worker saw since its last flush, which here is nothing, and the
    survivor (about 5 s later) continues the same bar. Returns when (wall clock), and the
    fleet's time of the last tick heard before."""
    victim = history.owner("account:sim-1")
    while True:
        heard = len(history.ticks.options())
        history.ticks.wait_for(lambda c, n=heard: len(c.options()) > n, 10, "a tick round")
        if max(_epoch(t) for t in history.ticks.options()) % BAR < 1.0:
            break
    time.sleep(0.25)
    victim.kill()
    return time.time(), max(_epoch(t) for t in history.ticks.options())


def test_candles_are_the_heard_ticks_bar_by_bar_across_a_sigkill_failover_with_greeks(
    history: History,
) -> None:
    pair = _nearest_pair(history.options)
    body = [{"instrument_token": o.instrument_token} for o in pair]
    assert history.api.post("/subscriptions", json=body).status_code == 200
    tokens = [o.instrument_token for o in pair]
    history.ticks.wait_for(
        lambda c: set(tokens) <= {t["instrument_token"] for t in c.options()}, 30, "first ticks"
    )
    time.sleep(2 * BAR)
    killed, last_before = _kill_between_ticks(history)
    history.ticks.wait_for(lambda c: len(c.options(killed + 0.05)) > 0, 30, "ticks after failover")
    resumed = time.time()
    time.sleep(2 * BAR)
    ticks = history.ticks.options()
    last = max(_epoch(t) for t in ticks)
    closed_until = last - last % BAR - BAR  # bars that had closed a bar before the last tick
    time.sleep(2.5)  # a flush and a move
    first_after = min(_epoch(t) for t in ticks if _epoch(t) > last_before)
    shared = last_before - last_before % BAR == first_after - first_after % BAR
    print(
        f"failover: ticks again {resumed - killed:.1f}s after the kill; "
        f"the handover {'shared a bar' if shared else 'fell across bars'}"
    )

    for token in tokens:
        heard = {s: ohlc for s, ohlc in _heard_bars(ticks, token).items() if s <= closed_until}
        first = min(heard)
        answer = history.get(
            instrument_token=token, from_ts=_iso(first), to_ts=_iso(closed_until)
        ).json()
        assert answer["source"] == "fleet" and answer["interval"] == "minute"
        dates = [c["date"] for c in answer["candles"]]
        assert len(dates) == len(set(dates)), "a duplicated bar"
        assert dates == [_iso(s) for s in sorted(heard)], "a missing or extra bar"
        got = {
            datetime.fromisoformat(c["date"]).timestamp(): (
                c["open"],
                c["high"],
                c["low"],
                c["close"],
            )
            for c in answer["candles"]
        }
        assert got == heard
        assert all(c["date"].endswith("+05:30") for c in answer["candles"])
    print(f"{len(heard)} bars of {BAR:g}s checked per token, failover inside them")
    handover = first_after - first_after % BAR
    assert handover in heard and any(s < handover for s in heard), sorted(heard)
    assert shared, "the survivor's first ticks fell in a later bar: no merge was exercised"

    # The predecessor's backfill: ISO UTC ends, oi=true for an option.
    start = datetime.fromtimestamp(min(heard), UTC).replace(tzinfo=None).isoformat() + "Z"
    backfill = history.get(
        instrument_token=tokens[0], from_ts=start, to_ts=_iso(closed_until, UTC), oi="true"
    )
    assert backfill.status_code == 200, backfill.text
    candles = backfill.json()["candles"]
    assert candles and all(c["oi"] is not None and c["oi"] > 0 for c in candles)
    with_greeks = [c for c in candles if c["underlying"] is not None]
    assert len(with_greeks) >= len(candles) - 1, candles  # the index's bars from the start
    for candle in with_greeks:
        assert 0.01 < candle["iv"] < 2 and 0 < candle["delta"] < 1  # a call
        assert candle["gamma"] > 0 and candle["theta"] < 0 and candle["vega"] > 0
        assert math.isfinite(candle["underlying"]) and candle["underlying"] > 20_000

    # 5minute: five bars each, from the session's open (09:15, a multiple of 75 s too); a
    # candle is in a range when it starts in it, so the range starts at a candle's start.
    five = history.get(
        instrument_token=tokens[0], from_ts=_iso(first - first % (5 * BAR)),
        to_ts=_iso(closed_until),
        interval="5minute",
    ).json()["candles"]  # fmt: skip
    assert five
    for candle in five:
        begins = datetime.fromisoformat(candle["date"]).timestamp()
        assert begins % (5 * BAR) == 0
        inside = [c for c in candles if 0 <= _epoch({"timestamp": c["date"]}) - begins < 5 * BAR]
        if inside and inside[0]["date"] == candle["date"]:  # a whole bucket in the range
            assert candle["open"] == inside[0]["open"]
        assert candle["high"] >= max(c["high"] for c in inside) if inside else True
        assert candle["volume"] >= sum(c["volume"] for c in inside)


def test_every_invalid_request_gets_its_4xx_and_kite_unreachable_a_502(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings()
    options = seed_universe(settings, with_expired=False)
    fleet = fleet_factory(settings)
    _, url = fleet.api()
    token = options[0].instrument_token
    start = FLEET_NOW - timedelta(hours=1)
    ok: dict[str, Any] = {
        "instrument_token": token,
        "from_ts": start.isoformat(),
        "to_ts": FLEET_NOW.isoformat(),
    }
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"to_ts": start.isoformat()}, 400, "must be after"),
        ({"account_id": "nobody"}, 400, "unknown account"),
        ({"instrument_token": 1}, 404, "not in the registry"),
        ({"from_ts": (FLEET_NOW - timedelta(days=61)).isoformat()}, 422, "60 days"),
        ({"interval": "2minute"}, 422, ""),
        ({"from_ts": "yesterday"}, 422, ""),
        ({"instrument_token": -1}, 422, ""),
        ({"from_ts": "0001-01-01T00:00:00+00:00"}, 400, "outside"),
        ({"to_ts": "9999-12-31T23:59:59+05:30"}, 400, "outside"),
        ({}, 502, "Kite could not serve"),  # no fleet bars; Kite on a closed port
    ]
    with httpx.Client(base_url=url, timeout=30) as api:
        for change, code, says in cases:
            answer = api.get("/history", params={**ok, **change})
            assert answer.status_code == code, (change, answer.text)
            assert says in answer.text, (change, answer.text)
        naive = {**ok, "from_ts": start.replace(tzinfo=None).isoformat(), "interval": "day"}
        assert api.get("/history", params=naive).status_code == 502  # read, then Kite asked


def test_kite_serves_the_range_before_the_fleets_first_bar(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    tokens = {"key_h": "tok-h-SECRET"}
    accounts = [{"account_id": "H", "api_key": "key_h", "access_token": "tok-h-SECRET"}]
    with KiteRestServer(tokens) as kite:
        settings = make_settings(kite_api_url=kite.url, accounts=orjson.dumps(accounts).decode())
        options = seed_universe(settings, with_expired=False)
        token = options[0].instrument_token
        opened = FLEET_NOW.replace(minute=0)  # 11:00: the fleet's bars begin at 11:05
        kite.set_candles(
            token, "minute",
            [[(opened + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%S%z"),
              10.0 + m, 11.0 + m, 9.0 + m, 10.5 + m, 100 * m] for m in range(10)],
        )  # fmt: skip
        engine = make_engine(settings.database_url)
        try:
            store = BarStore(make_session_factory(engine))
            builder = BarBuilder(60)
            for m in range(5, 8):
                builder.add(token, opened.timestamp() + m * 60, 50.0 + m, 1000 * m, 7, False)
            store.merge(builder.take())
        finally:
            engine.dispose()
        fleet = fleet_factory(settings)
        _, url = fleet.api()
        params: dict[str, Any] = {
            "instrument_token": token,
            "from_ts": opened.replace(tzinfo=None).isoformat(),  # naive: market time
            "to_ts": (opened + timedelta(minutes=7)).isoformat(),
            "account_id": "H",
        }
        with httpx.Client(base_url=url, timeout=30) as api:
            answer = api.get("/history", params=params).json()
        argv = [str(BIN / "tickfleet"), "history", str(token), "--csv", "--account", "H"]
        argv += ["--from", params["from_ts"], "--to", params["to_ts"], "--interval", "5minute"]
        printed = run_text(argv, env={**os.environ, **fleet.env}, timeout=60)
    assert answer["source"] == "mixed"
    closes = [c["close"] for c in answer["candles"]]
    assert closes == [10.5, 11.5, 12.5, 13.5, 14.5, 55.0, 56.0, 57.0]
    dates = [datetime.fromisoformat(c["date"]) for c in answer["candles"]]
    assert dates == [opened + timedelta(minutes=m) for m in range(8)]
    # the fleet's volume: the day's cumulative count less the previous bar's
    assert [c["volume"] for c in answer["candles"]][4:] == [400, 0, 1000, 1000]
    # the command line, 5minute: Kite has no 5minute candles here, the fleet's roll up
    # from 09:15 (11:05 starts one); 11:00 is before the fleet's first bar's candle
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines() == [
        "date,open,high,low,close,volume",
        f"{(opened + timedelta(minutes=5)).isoformat()},55.0,57.0,55.0,57.0,2000",
    ]
