"""Failover of a SIGKILLed stream worker, as a subscriber hears it, against the old timings
measured in the same run.

A real fleet per mode (a redis-server this script starts, the API, a control worker, beat
and two stream workers ``stream-a`` and ``stream-b`` with three pool slots each, all with
the environment of ``Settings.to_env()``), simulated feed ticking every 0.1 s, the 12
options of six strikes subscribed:

- standby: the defaults (lease TTL 1.5 s renewed every 0.3 s, watchdog every 3 s, a hot
  standby per stream on the other worker);
- baseline: the timings before standbys (TTL 5 s renewed every 1.5 s, no standby,
  TICKFLEET_STREAM_STANDBY=false), where the watchdog starts the stream after the lease
  lapsed.

Each mode first holds ``--steady-seconds`` of steady streaming with ``--burners`` busy
processes loading the cores, sampling every lease's remaining TTL every 20 ms: the
smallest is how close a busy stream came to losing its lease (TTL less the longest
renewal interval seen), and any change of holder would be a false takeover. Then
``--kills`` times: wait until the chosen stream (the option stream and the underlying
stream in turn) has an owner (and, with standbys, a standby), SIGKILL its owner's whole
worker (main and pool processes), and measure the gap in the ticks of every stream that
worker owned: the last tick heard before the kill to the first after it (a tick interval
is part of any gap). The killed worker is started again under its name before the next
kill, so one always stands by.

Printed: each gap, then per mode the median and largest gap of each stream and of all; the
last line is one JSON object (``failover_median_s``, ``failover_max_s``, the baseline's,
the steady phase's figures). Targets: median <= 2 s, every gap <= 3 s (``target_met``).

    python bench/failover.py [--kills 10] [--baseline-kills 10] [--steady-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.conftest import Fleet  # noqa: E402
from tests.support.failover import channel_of, gap_around, owner_pid  # noqa: E402
from tests.support.instants import FLEET_NOW, offset_to  # noqa: E402
from tests.support.polling import wait_until  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.runs import as_text  # noqa: E402
from tests.support.seed import seed_universe  # noqa: E402
from tests.support.ticks import TickCollector  # noqa: E402
from tickfleet.config.settings import Settings  # noqa: E402
from tickfleet.keyspace.keys import Keys  # noqa: E402
from tickfleet.keyspace.streams import account_stream, underlying_stream  # noqa: E402

OPTION_STREAM = account_stream("sim-1")
NIFTY_INDEX_STREAM = underlying_stream("NIFTY")
STREAMS = (OPTION_STREAM, NIFTY_INDEX_STREAM)
TICK_SECONDS = 0.1
TARGET_MEDIAN_S = 2.0
TARGET_MAX_S = 3.0

MODES: dict[str, dict[str, Any]] = {
    "standby": {},  # the defaults
    "baseline": {
        "lease_ttl_seconds": 5.0,
        "lease_renew_seconds": 1.5,
        "watchdog_interval_seconds": 3.0,
        "stream_standby": False,
    },
}


@dataclass
class Steady:
    seconds: float
    min_ttl_left_s: dict[str, float] = field(default_factory=dict)
    holders_changed: int = 0


@dataclass
class Run:
    mode: str
    gaps: list[tuple[str, float]]
    steady: Steady


def settings_for(mode: str, redis_url: str, workdir: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        database_url=f"sqlite:///{workdir}/tickfleet.db",
        clock_offset_seconds=offset_to(FLEET_NOW),
        kite_ticker_url="ws://127.0.0.1:9",
        kite_api_url="http://127.0.0.1:9",
        feed="mock",
        mock_tick_interval_seconds=TICK_SECONDS,
        stream_start_grace_seconds=4.0,
        reload_min_interval_seconds=1.0,
        **MODES[mode],
    )


class Observed:
    """The fleet as the benchmark sees it: Redis, /health, and every tick heard."""

    def __init__(self, settings: Settings, api: httpx.Client, fleet: Fleet) -> None:
        self.settings = settings
        self.api = api
        self.fleet = fleet
        self.keys = Keys(settings.key_prefix)
        self.redis = redis.Redis.from_url(settings.redis_url)
        self.ticks = TickCollector(settings.redis_url).start()
        self.workers = {name: fleet.stream_worker(name) for name in ("stream-a", "stream-b")}

    def streams(self) -> dict[str, dict[str, Any]]:
        return dict(self.api.get("/health").json()["streams"])

    def placed(self, stream: str, standby: bool) -> bool:
        """Owned, and (``standby``) with a standby whose process runs: a killed standby's
        marker outlives it by up to its TTL."""
        status = self.streams().get(stream, {})
        owned = bool(status.get("lease_holder")) and status["lease_holder"] == status["owner"]
        if not owned or not standby:
            return owned
        marker = self.redis.get(self.keys.stream_standby(stream))
        return marker is not None and psutil.pid_exists(owner_pid(as_text(marker)))

    def owner_worker(self, stream: str) -> str:
        hostname = self.streams()[stream]["hostname"]
        return next(name for name in self.workers if hostname.startswith(name + "@"))

    def close(self) -> None:
        self.ticks.stop()
        self.redis.close()


@contextmanager
def running_fleet(mode: str, logdir: Path) -> Iterator[Observed]:
    server = RedisServer(logdir / f"redis-{mode}").start()
    fleet: Fleet | None = None
    observed: Observed | None = None
    try:
        settings = settings_for(mode, server.url, logdir)
        options = seed_universe(settings, with_expired=False)
        (logdir / mode).mkdir(exist_ok=True)
        fleet = Fleet(settings, logdir / mode)
        with fleet.starting():
            _, url = fleet.api()
            fleet.control_worker()
            fleet.beat()
        with httpx.Client(base_url=url, timeout=30) as api:
            with fleet.starting():
                observed = Observed(settings, api, fleet)
            expiry = min(o.expiry for o in options if o.expiry is not None)
            near = [o for o in options if o.expiry == expiry]
            strikes = sorted({o.strike for o in near}, key=lambda k: abs(k - 24000))[:6]
            chain = [o for o in near if o.strike in strikes]
            body = [{"instrument_token": o.instrument_token} for o in chain]
            assert api.post("/subscriptions", json=body).status_code == 200
            yield observed
    finally:
        if observed is not None:
            observed.close()
        if fleet is not None:
            fleet.stop()
        server.stop()


def _burn(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def steady(observed: Observed, seconds: float, burners: int, standby: bool) -> Steady:
    """Sample the leases' remaining TTL while ``burners`` processes keep the cores busy."""
    wait_until(lambda: all(observed.placed(s, standby) for s in STREAMS), 60, 0.2, "placed")
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_burn, args=(stop,)) for _ in range(burners)]
    for proc in procs:
        proc.start()
    result = Steady(seconds, {s: float("inf") for s in STREAMS})
    holders = {s: observed.redis.get(observed.keys.stream_lease(s)) for s in STREAMS}
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for stream in STREAMS:
                key = observed.keys.stream_lease(stream)
                holder, pttl = observed.redis.get(key), observed.redis.pttl(key)
                result.min_ttl_left_s[stream] = min(result.min_ttl_left_s[stream], pttl / 1000)
                if holder != holders[stream]:
                    result.holders_changed += 1
                    holders[stream] = holder
            time.sleep(0.02)
    finally:
        stop.set()
        for proc in procs:
            proc.join()
    return result


def kill_and_measure(observed: Observed, stream: str, standby: bool) -> list[tuple[str, float]]:
    """Kill the worker owning ``stream``; the gap of every stream it owned."""
    wait_until(lambda: observed.placed(stream, standby), 60, 0.2, f"{stream} ready for a kill")
    victim = observed.owner_worker(stream)
    owned = [
        name
        for name, status in observed.streams().items()
        if (status.get("hostname") or "").startswith(victim + "@")
        and status.get("lease_holder") == status.get("owner")
    ]
    observed.workers[victim].kill()
    killed = time.time()
    gaps = []
    for name in owned:
        channel = channel_of(name, observed.ticks.channels)

        def gap(ch: str = channel) -> float | None:
            return gap_around(observed.ticks.snapshot(), ch, killed)

        wait_until(lambda: gap() is not None, 60, 0.05, f"{name} ticking again")
        gaps.append((name, gap() or 0.0))
    with observed.fleet.starting():
        observed.workers[victim] = observed.fleet.stream_worker(victim)
    return gaps


def run(mode: str, kills: int, steady_seconds: float, burners: int, logdir: Path) -> Run:
    standby = mode == "standby"
    with running_fleet(mode, logdir) as observed:
        calm = steady(observed, steady_seconds, burners, standby)
        gaps: list[tuple[str, float]] = []
        for i in range(kills):
            measured = kill_and_measure(observed, STREAMS[i % 2], standby)
            print(f"{mode} kill {i + 1}: " + ", ".join(f"{n} {g:.2f}s" for n, g in measured))
            gaps += measured
    return Run(mode, gaps, calm)


def figures(run: Run) -> dict[str, Any]:
    every = [g for _, g in run.gaps]
    out: dict[str, Any] = {
        "gaps": len(every),
        "median_s": round(statistics.median(every), 2) if every else None,
        "max_s": round(max(every), 2) if every else None,
    }
    for stream in STREAMS:
        mine = [g for n, g in run.gaps if n == stream]
        label = "option" if stream == OPTION_STREAM else "underlying"
        out[f"{label}_gaps"] = len(mine)
        out[f"{label}_median_s"] = round(statistics.median(mine), 2) if mine else None
        out[f"{label}_max_s"] = round(max(mine), 2) if mine else None
    out["steady_min_ttl_left_s"] = round(min(run.steady.min_ttl_left_s.values()), 3)
    out["steady_holders_changed"] = run.steady.holders_changed
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--baseline-kills", type=int, default=10)
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument("--burners", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tickfleet-failover-") as tmp:
        logdir = Path(tmp)
        new = run("standby", args.kills, args.steady_seconds, args.burners, logdir)
        old = run("baseline", args.baseline_kills, args.steady_seconds, args.burners, logdir)
    now, then = figures(new), figures(old)
    for name, f in (("standby", now), ("baseline", then)):
        print(
            f"{name}: {f['gaps']} gaps, median {f['median_s']}s, max {f['max_s']}s "
            f"(option median {f['option_median_s']}s max {f['option_max_s']}s, underlying "
            f"median {f['underlying_median_s']}s max {f['underlying_max_s']}s); steady "
            f"{args.steady_seconds:.0f}s with {args.burners} burners: lease TTL left >= "
            f"{f['steady_min_ttl_left_s']}s, holders changed {f['steady_holders_changed']}"
        )
    met = (
        now["median_s"] is not None
        and now["median_s"] <= TARGET_MEDIAN_S
        and now["max_s"] <= TARGET_MAX_S
        and now["steady_holders_changed"] == 0
    )
    summary = {
        "kills": args.kills,
        "failover_median_s": now["median_s"],
        "failover_max_s": now["max_s"],
        "option_median_s": now["option_median_s"],
        "option_max_s": now["option_max_s"],
        "underlying_median_s": now["underlying_median_s"],
        "underlying_max_s": now["underlying_max_s"],
        "steady_min_ttl_left_s": now["steady_min_ttl_left_s"],
        "steady_holders_changed": now["steady_holders_changed"],
        "baseline_kills": args.baseline_kills,
        "baseline_median_s": then["median_s"],
        "baseline_max_s": then["max_s"],
        "baseline_option_median_s": then["option_median_s"],
        "baseline_underlying_median_s": then["underlying_median_s"],
        "ratio": round(then["median_s"] / now["median_s"], 2)
        if now["median_s"] and then["median_s"]
        else None,
        "target_met": met,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
