"""The streaming fleet end to end: API, control worker, two stream workers and beat,
all real processes against a real Redis, observed from a consumer's side."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

import httpx
import orjson
import pytest
import redis

from tests.conftest import Fleet
from tests.support.failover import channel_of, gap_around, owner_pid
from tests.support.polling import wait_until
from tests.support.processes import BIN, FleetProcess, run_command
from tests.support.runs import Publish, as_text, publishes
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector, check_option_tick
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument
from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import underlying_stream
from tickfleet.keyspace.tasks import QUEUE_STREAM, TASK_STREAM_ACCOUNT
from tickfleet.market.expiry import years_to_expiry
from workers.app import make_app

NIFTY_INDEX_STREAM = underlying_stream("NIFTY")

pytestmark = pytest.mark.timeout(150)
APP = "tests.support.instrumented_workers"
TICK = 0.3
LEASE_TTL = 1.5  # the defaults: a standby takes over within the TTL
LEASE_RENEW = 0.3
WATCHDOG = 1.0


@dataclass
class Streaming:
    fleet: Fleet
    api: httpx.Client
    ticks: TickCollector
    options: list[Instrument]
    workers: list[FleetProcess]
    redis: redis.Redis
    keys: Keys

    def chain(self, n_strikes: int, skip: int = 0) -> list[Instrument]:
        """CE and PE of ``n_strikes`` strikes nearest the money, nearest expiry."""
        expiry = min(o.expiry for o in self.options if o.expiry is not None)
        near = [o for o in self.options if o.expiry == expiry]
        strikes = sorted({o.strike for o in near}, key=lambda k: abs(k - 24000))
        chosen = set(strikes[skip : skip + n_strikes])
        return sorted(
            (o for o in near if o.strike in chosen), key=lambda o: (o.strike, o.instrument_type)
        )

    def subscribe(self, instruments: list[Instrument]) -> None:
        body = [{"instrument_token": i.instrument_token} for i in instruments]
        assert self.api.post("/subscriptions", json=body).status_code == 200

    def lease_owner(self, stream: str = "account:sim-1") -> str | None:
        raw = self.redis.get(self.keys.stream_lease(stream))
        return as_text(raw) if raw else None

    def health(self) -> dict[str, Any]:
        return dict(self.api.get("/health").json())

    def wait_metric(self, pattern: str, timeout: float = 5) -> bool:
        """Metrics reach Redis once a second from each process: poll for a regex."""
        metric = lambda: re.search(pattern, self.api.get("/metrics").text)  # noqa: E731
        return wait_until(metric, timeout, 0.2, pattern) >= 0

    def wait_health(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10
    ) -> dict[str, Any]:
        """Stream status is reported every second: poll until it shows what we expect."""
        deadline = time.monotonic() + timeout
        while True:
            health = self.health()
            if predicate(health) or time.monotonic() > deadline:
                return health
            time.sleep(0.2)


@pytest.fixture
def streaming(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_client: redis.Redis,
) -> Iterator[Streaming]:
    settings = make_settings(
        feed="mock",
        mock_tick_interval_seconds=TICK,
        lease_ttl_seconds=LEASE_TTL,
        lease_renew_seconds=LEASE_RENEW,
        watchdog_interval_seconds=WATCHDOG,
        stream_start_grace_seconds=4.0,
        reload_min_interval_seconds=1.0,
        stream_stale_seconds=5.0,
    )
    options = seed_universe(settings, with_expired=False)
    fleet = fleet_factory(settings, APP)
    with fleet.starting():
        _, url = fleet.api()
        fleet.control_worker()
        workers = [fleet.stream_worker("stream-a"), fleet.stream_worker("stream-b")]
        fleet.beat()
    collector = TickCollector(settings.redis_url).start()
    with httpx.Client(base_url=url, timeout=30) as api:
        yield Streaming(
            fleet, api, collector, options, workers, redis_client, Keys(settings.key_prefix)
        )
    collector.stop()


def test_subscribed_options_stream_well_formed_coherent_ticks(streaming: Streaming) -> None:
    chain = streaming.chain(6)
    assert len(chain) == 12
    started = time.time()
    streaming.subscribe(chain)
    tokens = {i.instrument_token for i in chain}
    took = streaming.ticks.wait_for(
        lambda c: tokens <= {t["instrument_token"] for t in c.options(started)},
        20,
        "a tick for every subscribed token",
    )
    print(f"first tick of all 12 tokens {took:.2f}s after subscribing")
    time.sleep(2 * TICK)
    options = streaming.ticks.options(started)
    assert {t["instrument_token"] for t in options} == tokens
    for tick in options:
        check_option_tick(tick)
    spot = streaming.ticks.underlying(started)[-1]["last_price"]
    by_time: dict[str, dict[tuple[float, str], dict[str, Any]]] = {}
    for tick in options:
        by_time.setdefault(tick["timestamp"], {})[(tick["strike"], tick["instrument_type"])] = tick
    checked = 0
    for stamp, ticks in by_time.items():
        now = datetime.fromisoformat(stamp)
        for (strike, kind), call in ticks.items():
            put = ticks.get((strike, "PE"))
            if kind != "CE" or put is None:
                continue
            years = years_to_expiry(
                now, datetime.fromisoformat(call["expiry"]).date(), "Asia/Kolkata"
            )
            forward_gap = spot - strike * math.exp(-0.065 * years)
            assert abs(call["last_price"] - put["last_price"] - forward_gap) <= 0.005 * spot
            checked += 1
    assert checked >= 6
    health = streaming.wait_health(lambda h: h["streams"]["account:sim-1"]["ticks"] > 0)
    assert health["status"] == "ok", health["problems"]
    sim = health["streams"]["account:sim-1"]
    assert sim["mode"] == "mock" and sim["tokens"] == 12
    assert sim["lease_holder"] == streaming.lease_owner() == sim["owner"]
    assert streaming.wait_metric(r'ticks_published_total\{stream="account:sim-1"\} [1-9]')
    assert streaming.wait_metric(r"tick_publish_latency_seconds_count [1-9]")
    assert streaming.wait_metric(r'stream_restarts_total\{stream="account:sim-1"\} [1-9]')


def test_the_tail_command_prints_live_ticks(streaming: Streaming) -> None:
    chain = streaming.chain(1)
    streaming.subscribe(chain)
    token = chain[0].instrument_token
    streaming.ticks.wait_for(
        lambda c: any(t["instrument_token"] == token for t in c.options()), 20, "ticks"
    )
    argv = [
        str(BIN / "tickfleet"),
        "tail",
        "--token",
        str(token),
        "--limit",
        "3",
        "--seconds",
        "15",
    ]
    done = run_command(argv, env={**os.environ, **streaming.fleet.env}, timeout=30)
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0, done.stderr.decode()
    assert len(lines) == 3
    assert all(orjson.loads(line)["instrument_token"] == token for line in lines)


def test_a_failing_celery_task_is_recorded_and_counted(streaming: Streaming) -> None:
    celery = make_app(streaming.fleet.settings)
    celery.send_task(TASK_STREAM_ACCOUNT, args=[], queue=QUEUE_STREAM)  # no account
    health = streaming.wait_health(
        lambda h: any(f["task"] == TASK_STREAM_ACCOUNT for f in h["failures"])
    )
    failure = next(f for f in health["failures"] if f["task"] == TASK_STREAM_ACCOUNT)
    assert failure["exc_type"] == "TypeError"
    assert "task_id" in failure["context"]
    counted = re.escape(f'task_failures_total{{task="{TASK_STREAM_ACCOUNT}"}} 1.0')
    assert streaming.wait_metric(counted)


def test_adding_and_removing_tokens_does_not_restart_the_stream(streaming: Streaming) -> None:
    first = streaming.chain(4)
    streaming.subscribe(first)
    tokens = {i.instrument_token for i in first}
    streaming.ticks.wait_for(
        lambda c: tokens <= {t["instrument_token"] for t in c.options()}, 20, "initial ticks"
    )
    owner = streaming.lease_owner()
    started_at = streaming.health()["streams"]["account:sim-1"]["started_at"]

    added = streaming.chain(2, skip=4)
    removed = first[:2]
    change = time.time()
    streaming.subscribe(added)
    for instrument in removed:
        assert (
            streaming.api.delete(f"/subscriptions/{instrument.instrument_token}").status_code == 200
        )
    added_tokens = {i.instrument_token for i in added}
    removed_tokens = {i.instrument_token for i in removed}
    streaming.ticks.wait_for(
        lambda c: added_tokens <= {t["instrument_token"] for t in c.options(change)},
        20,
        "ticks for the added tokens",
    )
    time.sleep(2.0)  # the reload has run; let the removal take effect
    quiet = time.time()
    time.sleep(5 * TICK)
    recent = {t["instrument_token"] for t in streaming.ticks.options(quiet)}
    kept = tokens - removed_tokens
    assert recent == kept | added_tokens
    assert streaming.lease_owner() == owner
    assert streaming.health()["streams"]["account:sim-1"]["started_at"] == started_at
    for token in kept:  # no gap on unchanged tokens across the whole change
        stamps = [
            r.at for r in streaming.ticks.snapshot() if r.tick.get("instrument_token") == token
        ]
        gaps = [b - a for a, b in pairwise(stamps)]
        assert max(gaps) < 3 * TICK + 0.5, f"token {token} paused {max(gaps):.2f}s"


def test_a_failing_coroutine_is_logged_counted_shown_and_recovered(streaming: Streaming) -> None:
    chain = streaming.chain(1)
    streaming.subscribe(chain)
    token = chain[0].instrument_token
    streaming.ticks.wait_for(
        lambda c: any(t["instrument_token"] == token for t in c.options()),
        20,
        "ticks before the fault",
    )
    owner = streaming.lease_owner()
    # A corrupt snapshot with a version no writer can beat (versions start at the clock's
    # milliseconds): every read of it fails.
    streaming.redis.set(
        streaming.keys.market_snapshot("NIFTY"), b'{"version": 4611686018427387904}'
    )
    deadline = time.monotonic() + 15
    failure = None
    while failure is None and time.monotonic() < deadline:
        failures = streaming.health()["failures"]
        failure = next(
            (
                f
                for f in failures
                if f["task"] == "feed" and f["context"].get("stream") == "account:sim-1"
            ),
            None,
        )
        time.sleep(0.2)
    assert failure is not None, "the failure must show in /health"
    streaming.redis.delete(streaming.keys.market_snapshot("NIFTY"))  # the fault goes away
    repaired = time.time()
    assert failure["context"]["account"] == "sim-1"
    assert "snapshot" in failure["message"].lower() or failure["exc_type"]
    lines = [
        line
        for worker in streaming.workers
        for line in worker.log().splitlines()
        if "task feed failed [" in line and "stream=account:sim-1" in line
    ]
    assert lines, "the failure must be logged by the worker running the stream"
    assert "account=sim-1" in lines[0] and "ERROR" in lines[0]
    assert streaming.wait_metric(r'task_failures_total\{task="feed"\} [1-9]')
    streaming.ticks.wait_for(
        lambda c: any(t["instrument_token"] == token for t in c.options(repaired)),
        20,
        "ticks again after the fault",
    )
    assert streaming.lease_owner() == owner, "recovered by restarting the coroutine, not the stream"


def owner_worker(streaming: Streaming, stream: str) -> FleetProcess:
    status = streaming.health()["streams"][stream]
    return next(w for w in streaming.workers if status["hostname"].startswith(w.name + "@"))


def assert_one_publisher_at_a_time(records: list[Publish], stream: str) -> list[int]:
    """Per stream, publishing processes take turns: once one takes over, the other never returns."""
    order: list[int] = []
    for record in sorted((r for r in records if r.stream == stream), key=lambda r: r.at):
        if not order or order[-1] != record.pid:
            assert record.pid not in order, f"process {record.pid} published again after a takeover"
            order.append(record.pid)
    return order


def standing_by(streaming: Streaming, stream: str, timeout: float = 20) -> str:
    """Wait until ``stream`` has a standby on another worker than its owner's; its worker."""

    def ready(doc: dict[str, Any]) -> bool:
        status = doc["streams"].get(stream, {})
        return bool(status.get("standby")) and status.get("lease_holder") == status.get("owner")

    def ready_and_alive(doc: dict[str, Any]) -> bool:
        """A killed standby's marker outlives it by up to its TTL: its process must run."""
        marker = streaming.redis.get(streaming.keys.stream_standby(stream))
        return ready(doc) and marker is not None and _alive(owner_pid(as_text(marker)))

    doc = streaming.wait_health(ready_and_alive, timeout)
    assert ready_and_alive(doc), doc["streams"].get(stream)
    status = doc["streams"][stream]
    assert status["standby"] != status["hostname"], "a standby never shares its owner's worker"
    assert not any(stream in p for p in doc["problems"]), doc["problems"]
    return str(status["standby"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def replace_worker(streaming: Streaming, gone: FleetProcess) -> None:
    """Start a worker under the name of one that was killed, as an operator would."""
    streaming.workers.remove(gone)
    fresh = streaming.fleet.stream_worker(gone.name)
    streaming.workers.append(fresh)


def heard_gap(streaming: Streaming, channel: str, at: float) -> float:
    """The silence on ``channel`` around ``at``, once ticks are heard again."""

    def gap() -> float | None:
        return gap_around(streaming.ticks.snapshot(), channel, at)

    wait_until(lambda: gap() is not None, 15, 0.05, f"ticks on {channel} again")
    return gap() or 0.0


# serial: the gap is timed against the lease TTL (1.5 s); on a machine shared with other
# fleets, the standby's start of the stream takes longer.
@pytest.mark.serial
def test_a_killed_worker_streams_resume_on_the_standby_within_the_lease_ttl(
    streaming: Streaming,
) -> None:
    streaming.subscribe(streaming.chain(2))
    streaming.ticks.wait_for(lambda c: len(c.options()) > 4, 20, "ticks before the kills")
    channels = streaming.ticks.channels
    gaps: list[tuple[str, float]] = []
    for round_ in range(3):
        stream = ("account:sim-1", NIFTY_INDEX_STREAM)[round_ % 2]
        standing_by(streaming, stream)
        victim = owner_worker(streaming, stream)
        owned = [
            name
            for name, status in streaming.health()["streams"].items()
            if (status["hostname"] or "").startswith(victim.name + "@")
        ]
        victim.kill()
        killed = time.time()
        gaps += [(name, heard_gap(streaming, channel_of(name, channels), killed)) for name in owned]
        replace_worker(streaming, victim)
    print("gaps after each kill: " + ", ".join(f"{n} {g:.2f}s" for n, g in gaps))
    assert max(g for _, g in gaps) <= LEASE_TTL + 1.5, gaps
    for stream in ("account:sim-1", NIFTY_INDEX_STREAM):
        records = [r for r in publishes(streaming.redis) if r.stream == stream]
        assert_one_publisher_at_a_time(records, stream)
    assert streaming.health()["streams"]["account:sim-1"]["problem"] is None


# serial: the owner is frozen for a span timed against the lease TTL.
@pytest.mark.serial
def test_an_owner_frozen_past_its_lease_publishes_nothing_once_the_standby_took_over(
    streaming: Streaming,
) -> None:
    stream = "account:sim-1"
    streaming.subscribe(streaming.chain(2))
    streaming.ticks.wait_for(lambda c: len(c.options()) > 4, 20, "ticks before the freeze")
    standing_by(streaming, stream)
    owner = streaming.health()["streams"][stream]["owner"]
    frozen_pid = owner_pid(owner)
    os.kill(frozen_pid, signal.SIGSTOP)
    frozen = time.time()
    try:

        def successor() -> list[Publish]:
            return [
                r
                for r in publishes(streaming.redis)
                if r.stream == stream and r.pid != frozen_pid and r.at > frozen
            ]

        wait_until(lambda: bool(successor()), 15, 0.05, "the standby publishing")
        took_over = min(r.at for r in successor())
        time.sleep(max(0.0, frozen + 2 * LEASE_TTL - time.time()))  # frozen well past it
    finally:
        os.kill(frozen_pid, signal.SIGCONT)
    resumed = time.time()
    print(f"standby published {took_over - frozen:.2f}s after the owner froze")
    # The resumed owner learns it lost the lease (refused renewal, or the fence) and ends.
    wait_until(
        lambda: (
            f"lease {streaming.keys.stream_lease(stream)}" in _logs(streaming)
            and "ended" in _logs(streaming)
        ),
        10,
        0.2,
        "the stale owner ends its stream",
    )
    time.sleep(1.0)  # anything it might still send would be recorded by now
    records = [r for r in publishes(streaming.redis) if r.stream == stream]
    stale = [r for r in records if r.pid == frozen_pid and r.at >= took_over]
    assert not stale, f"the stale owner published after its successor: {stale}"
    assert assert_one_publisher_at_a_time(records, stream)[-2:][0] == frozen_pid
    assert streaming.lease_owner(stream) != owner
    print(f"stale owner resumed {resumed - frozen:.2f}s after the freeze; published nothing")


def _logs(streaming: Streaming) -> str:
    return "".join(worker.log() for worker in streaming.workers)


# serial: the handover is timed against the lease TTL; on a machine shared with other
# fleets, the standby's start of the stream takes longer.
@pytest.mark.serial
def test_a_warm_shutdown_hands_the_stream_over_before_the_lease_would_lapse(
    streaming: Streaming,
) -> None:
    streaming.subscribe(streaming.chain(1))
    streaming.ticks.wait_for(lambda c: len(c.options()) > 2, 20, "ticks before the shutdown")
    standing_by(streaming, "account:sim-1")
    leaving = owner_worker(streaming, "account:sim-1")
    stopped = time.time()
    leaving.stop()
    streaming.ticks.wait_for(lambda c: len(c.options(stopped)) > 0, 30, "ticks after handover")
    records = [r for r in publishes(streaming.redis) if r.stream == "account:sim-1"]
    handover = min(r.at for r in records if r.at > stopped) - stopped
    print(f"handover after warm shutdown took {handover:.2f}s")
    assert handover < LEASE_TTL, "a released lease must not have to lapse first"
    assert len(assert_one_publisher_at_a_time(records, "account:sim-1")) == 2


def test_a_worker_shut_down_by_remote_control_is_named_and_its_streams_move(
    streaming: Streaming,
) -> None:
    streaming.subscribe(streaming.chain(1))
    streaming.ticks.wait_for(lambda c: len(c.options()) > 2, 20, "ticks before the shutdown")
    leaving = owner_worker(streaming, "account:sim-1")
    staying = next(w for w in streaming.workers if w is not leaving)
    hostname = streaming.health()["streams"]["account:sim-1"]["hostname"]
    told = time.monotonic()
    subprocess.run(
        [str(BIN / "celery"), "-A", APP, "control", "shutdown", "--destination", hostname],
        env=streaming.fleet.env, capture_output=True, timeout=30, check=False,
    )  # fmt: skip

    def named_and_moved(doc: dict[str, Any]) -> bool:
        said = " ".join(doc["problems"] + doc["warnings"])
        holder = doc["streams"]["account:sim-1"]["hostname"] or ""
        return hostname in said and holder.startswith(staying.name + "@")

    doc = streaming.wait_health(named_and_moved, timeout=10)
    took = time.monotonic() - told
    print(f"remote shutdown of {hostname}: named and stream moved after {took:.2f}s")
    assert named_and_moved(doc), (doc["problems"], doc["warnings"], doc["streams"]["account:sim-1"])
    wait_until(lambda: not leaving.alive(), 15, 0.2, "the told worker exits")
