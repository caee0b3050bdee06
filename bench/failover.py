"""Failover of a SIGKILLed stream worker, as a subscriber hears it, against the old timings
measured in the same run.

A real fleet per mode (a redis-server this script starts, the API, a control worker, beat
and two stream workers ``stream-a`` and ``stream-b`` with three pool slots each, all with
the environment of ``Settings.to_env()``), the 12 options of six strikes subscribed:

- standby: the defaults (lease TTL 1.5 s renewed every 0.3 s, watchdog every 3 s, a hot
  standby per stream on the other worker), simulated feed ticking every 0.1 s;
- baseline: the timings before standbys (TTL 5 s renewed every 1.5 s, no standby,
  TICKFLEET_STREAM_STANDBY=false), where the watchdog starts the stream after the lease
  lapsed; simulated as above;
- live: the defaults, ``TICKFLEET_FEED=live`` with one Kite account (``primary``, whose
  option stream is ``account:primary``) against the local Kite server
  (``producers.kite_sim.local_server``) sending a frame every 0.1 s, the Kite connection
  settings left at their defaults. A killed stream's successor opens its own connection
  to the server and subscribes before its first tick: the reconnect is in the gap.

Each mode first holds ``--steady-seconds`` of steady streaming with ``--burners`` busy
processes loading the cores, sampling every lease's remaining TTL every 20 ms: the
smallest is how close a busy stream came to losing its lease (TTL less the longest
renewal interval seen), and any change of holder would be a false takeover. Then
``--kills`` times: wait until the chosen stream (the option stream and the underlying
stream in turn) has an owner (and, with standbys, a standby), SIGKILL its owner's whole
worker (main and pool processes), and measure the gap in the ticks of every stream that
worker owned: the last tick heard before the kill to the first after it (a tick interval
is part of any gap). Live, each gap also says when the successor took the lease and when
its Kite connection opened, seconds after the kill, from the status it reports to
``/health``. The killed worker is started again under its name before the next kill, so
one always stands by.

Printed: each gap, then per mode the median and largest gap of each stream and of all; the
last line is one JSON object (``failover_median_s``, ``failover_max_s``, the baseline's,
the steady phase's figures; the live mode's as ``live_*``). Targets: median <= 2 s, every
gap <= 3 s (``target_met`` simulated, ``live_target_met`` live).

    python bench/failover.py [--kills 10] [--baseline-kills 10] [--live-kills 10]
                             [--steady-seconds 20]

``--live-kills 0`` leaves the live mode out.
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
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import psutil
import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from producers.kite_sim.local_server import KiteServer  # noqa: E402
from tests.conftest import Fleet  # noqa: E402
from tests.support.failover import channel_of, gap_around, owner_pid  # noqa: E402
from tests.support.fair import fair_prices  # noqa: E402
from tests.support.instants import FLEET_NOW, offset_to  # noqa: E402
from tests.support.polling import wait_until  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.runs import as_text  # noqa: E402
from tests.support.seed import seed_universe  # noqa: E402
from tests.support.ticks import TickCollector  # noqa: E402
from tickfleet.accounts.config import SIMULATED_ACCOUNT_ID  # noqa: E402
from tickfleet.config.settings import Settings  # noqa: E402
from tickfleet.instruments import Instrument  # noqa: E402
from tickfleet.instruments.universe import INDEX_TOKEN  # noqa: E402
from tickfleet.keyspace.keys import Keys  # noqa: E402
from tickfleet.keyspace.streams import account_stream, underlying_stream  # noqa: E402

OPTION_STREAM = account_stream(SIMULATED_ACCOUNT_ID)
NIFTY_INDEX_STREAM = underlying_stream("NIFTY")
STREAMS = (OPTION_STREAM, NIFTY_INDEX_STREAM)
TICK_SECONDS = 0.1
TARGET_MEDIAN_S = 2.0
TARGET_MAX_S = 3.0
SPOT = 24_000.0

# The live mode's Kite account: its option stream is ``account:<LIVE_ACCOUNT>``.
LIVE_ACCOUNT = "primary"
LIVE_STREAMS = (account_stream(LIVE_ACCOUNT), NIFTY_INDEX_STREAM)
API_KEY, ACCESS_TOKEN = "bench_api_key", "bench-access-token-1"
VOL = 0.15  # the options are quoted at this IV, so the live greeks solve

# The live mode's keys in the last line (``live_`` in front) and the figure each shows.
LIVE_KEYS = {
    "failover_median_s": "median_s",
    "failover_max_s": "max_s",
    "option_median_s": "option_median_s",
    "option_max_s": "option_max_s",
    "underlying_median_s": "underlying_median_s",
    "underlying_max_s": "underlying_max_s",
    "lease_taken_median_s": "lease_taken_median_s",
    "kite_connected_median_s": "connected_median_s",
    "steady_min_ttl_left_s": "steady_min_ttl_left_s",
    "steady_holders_changed": "steady_holders_changed",
}

MODES: dict[str, dict[str, Any]] = {
    "standby": {},  # the defaults
    "baseline": {
        "lease_ttl_seconds": 5.0,
        "lease_renew_seconds": 1.5,
        "watchdog_interval_seconds": 3.0,
        "stream_standby": False,
    },
    "live": {},  # the defaults, Kite's connection settings too
}


def streams_of(mode: str) -> tuple[str, str]:
    """The mode's option stream and underlying stream, in that order."""
    return LIVE_STREAMS if mode == "live" else STREAMS


@dataclass
class Steady:
    seconds: float
    min_ttl_left_s: dict[str, float] = field(default_factory=dict)
    holders_changed: int = 0


class Gap(NamedTuple):
    """One stream's gap after a kill; live, also when its successor took the lease and
    opened its Kite connection (seconds after the kill)."""

    stream: str
    seconds: float
    lease_taken_s: float | None = None
    connected_s: float | None = None

    def __str__(self) -> str:
        text = f"{self.stream} {self.seconds:.2f}s"
        if self.lease_taken_s is None or self.connected_s is None:
            return text
        return f"{text} (lease taken {self.lease_taken_s:.2f}s, Kite {self.connected_s:.2f}s)"


@dataclass
class Run:
    mode: str
    gaps: list[Gap]
    steady: Steady


def settings_for(mode: str, redis_url: str, workdir: Path, kite_url: str | None = None) -> Settings:
    """The mode's settings; ``kite_url`` (the live mode) makes one Kite account there."""
    feed: dict[str, Any] = {
        "feed": "mock",
        "kite_ticker_url": "ws://127.0.0.1:9",
        "mock_tick_interval_seconds": TICK_SECONDS,
    }
    if kite_url is not None:
        feed = {
            "feed": "live",
            "kite_ticker_url": kite_url,
            "kite_api_key": API_KEY,
            "kite_access_token": ACCESS_TOKEN,
            "kite_account_id": LIVE_ACCOUNT,
        }
    return Settings(
        redis_url=redis_url,
        # A database per mode: the live fleet starts without the simulated ones' subscriptions.
        database_url=f"sqlite:///{workdir}/tickfleet-{mode}.db",
        clock_offset_seconds=offset_to(FLEET_NOW),
        kite_api_url="http://127.0.0.1:9",  # nothing here asks Kite's REST side
        stream_start_grace_seconds=4.0,
        reload_min_interval_seconds=1.0,
        **feed,
        **MODES[mode],
    )


class Observed:
    """The fleet as the benchmark sees it: Redis, /health, and every tick heard."""

    def __init__(
        self, settings: Settings, api: httpx.Client, fleet: Fleet, streams: tuple[str, str]
    ) -> None:
        self.settings = settings
        self.api = api
        self.fleet = fleet
        self.watched = streams
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


def near_chain(options: list[Instrument]) -> list[Instrument]:
    """The nearest expiry's options of the six strikes nearest the spot."""
    expiry = min(o.expiry for o in options if o.expiry is not None)
    near = [o for o in options if o.expiry == expiry]
    strikes = sorted({o.strike for o in near}, key=lambda k: abs(k - SPOT))[:6]
    return [o for o in near if o.strike in strikes]


def local_kite(stack: ExitStack) -> KiteServer:
    """The local Kite ticker, a frame every tick interval, stopped with ``stack``."""
    kite = KiteServer({API_KEY: ACCESS_TOKEN}, interval=TICK_SECONDS, heartbeat_interval=0.5)
    stack.enter_context(kite)
    return kite


def quote(kite: KiteServer, chain: list[Instrument], settings: Settings) -> None:
    """The index at the spot and each option at its fair price at ``VOL``."""
    kite.set_price(INDEX_TOKEN, SPOT)
    for token, value in fair_prices(chain, settings, {"NIFTY": SPOT}, VOL).items():
        kite.set_price(token, value)


@contextmanager
def running_fleet(mode: str, logdir: Path) -> Iterator[Observed]:
    with ExitStack() as stack:
        server = RedisServer(logdir / f"redis-{mode}").start()
        stack.callback(server.stop)
        kite = local_kite(stack) if mode == "live" else None
        settings = settings_for(mode, server.url, logdir, kite.url if kite is not None else None)
        chain = near_chain(seed_universe(settings, with_expired=False))
        if kite is not None:
            quote(kite, chain, settings)
        (logdir / mode).mkdir(exist_ok=True)
        fleet = Fleet(settings, logdir / mode)
        stack.callback(fleet.stop)
        with fleet.starting():
            _, url = fleet.api()
            fleet.control_worker()
            fleet.beat()
        api = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        with fleet.starting():
            observed = Observed(settings, api, fleet, streams_of(mode))
        stack.callback(observed.close)
        body = [{"instrument_token": o.instrument_token} for o in chain]
        assert api.post("/subscriptions", json=body).status_code == 200
        yield observed


def _burn(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def steady(observed: Observed, seconds: float, burners: int, standby: bool) -> Steady:
    """Sample the leases' remaining TTL while ``burners`` processes keep the cores busy."""
    streams = observed.watched
    wait_until(lambda: all(observed.placed(s, standby) for s in streams), 60, 0.2, "placed")
    stop = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_burn, args=(stop,)) for _ in range(burners)]
    for proc in procs:
        proc.start()
    result = Steady(seconds, {s: float("inf") for s in streams})
    holders = {s: observed.redis.get(observed.keys.stream_lease(s)) for s in streams}
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for stream in streams:
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


def kill_and_measure(observed: Observed, stream: str, standby: bool) -> list[Gap]:
    """Kill the worker owning ``stream``; the gap of every stream it owned."""
    wait_until(lambda: observed.placed(stream, standby), 60, 0.2, f"{stream} ready for a kill")
    victim = observed.owner_worker(stream)
    owned = {
        name: status["owner"]
        for name, status in observed.streams().items()
        if (status.get("hostname") or "").startswith(victim + "@")
        and status.get("lease_holder") == status.get("owner")
    }
    observed.workers[victim].kill()
    killed = time.time()
    gaps = [heard_gap(observed, name, killed) for name in owned]
    if observed.settings.feed == "live":
        gaps = [handover(observed, gap, owned[gap.stream], killed) for gap in gaps]
    with observed.fleet.starting():
        observed.workers[victim] = observed.fleet.stream_worker(victim)
    return gaps


def heard_gap(observed: Observed, stream: str, killed: float) -> Gap:
    """The stream's gap around the kill, once a tick after it has been heard."""
    channel = channel_of(stream, observed.ticks.channels)

    def gap() -> float | None:
        return gap_around(observed.ticks.snapshot(), channel, killed)

    wait_until(lambda: gap() is not None, 60, 0.05, f"{stream} ticking again")
    return Gap(stream, gap() or 0.0)


def handover(observed: Observed, gap: Gap, predecessor: str, killed: float) -> Gap:
    """Where a live gap went: seconds from the kill until the successor took the lease
    and until its last Kite connection opened, as its status reports them (on the fleet's
    clock, shifted by the offset)."""
    found: dict[str, Any] = {}

    def reported() -> bool:
        status = observed.streams().get(gap.stream, {})
        connections = status.get("connections") or []
        if status.get("owner") in (None, predecessor) or not connections:
            return False
        found.update(status)
        return all(c["connected"] for c in connections)

    wait_until(reported, 30, 0.2, f"{gap.stream}'s successor connected")
    at = killed + observed.settings.clock_offset_seconds
    return gap._replace(
        lease_taken_s=found["started_at"] - at,
        connected_s=max(c["since"] for c in found["connections"]) - at,
    )


def run(mode: str, kills: int, steady_seconds: float, burners: int, logdir: Path) -> Run:
    standby = bool(MODES[mode].get("stream_standby", True))
    with running_fleet(mode, logdir) as observed:
        calm = steady(observed, steady_seconds, burners, standby)
        gaps: list[Gap] = []
        for i in range(kills):
            measured = kill_and_measure(observed, observed.watched[i % 2], standby)
            print(f"{mode} kill {i + 1}: " + ", ".join(map(str, measured)))
            gaps += measured
    return Run(mode, gaps, calm)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def figures(run: Run) -> dict[str, Any]:
    every = [g.seconds for g in run.gaps]
    out: dict[str, Any] = {
        "gaps": len(every),
        "median_s": median(every),
        "max_s": round(max(every), 2) if every else None,
    }
    for label, stream in zip(("option", "underlying"), streams_of(run.mode), strict=True):
        mine = [g.seconds for g in run.gaps if g.stream == stream]
        out[f"{label}_gaps"] = len(mine)
        out[f"{label}_median_s"] = median(mine)
        out[f"{label}_max_s"] = round(max(mine), 2) if mine else None
    taken = [g.lease_taken_s for g in run.gaps if g.lease_taken_s is not None]
    connected = [g.connected_s for g in run.gaps if g.connected_s is not None]
    out["lease_taken_median_s"], out["connected_median_s"] = median(taken), median(connected)
    out["steady_min_ttl_left_s"] = round(min(run.steady.min_ttl_left_s.values()), 3)
    out["steady_holders_changed"] = run.steady.holders_changed
    return out


def met(f: dict[str, Any]) -> bool:
    """The targets: median and largest gap within theirs, no false takeover when steady."""
    return (
        f["median_s"] is not None
        and f["median_s"] <= TARGET_MEDIAN_S
        and f["max_s"] <= TARGET_MAX_S
        and f["steady_holders_changed"] == 0
    )


def report(name: str, f: dict[str, Any], args: argparse.Namespace) -> str:
    return (
        f"{name}: {f['gaps']} gaps, median {f['median_s']}s, max {f['max_s']}s "
        f"(option median {f['option_median_s']}s max {f['option_max_s']}s, underlying "
        f"median {f['underlying_median_s']}s max {f['underlying_max_s']}s); steady "
        f"{args.steady_seconds:.0f}s with {args.burners} burners: lease TTL left >= "
        f"{f['steady_min_ttl_left_s']}s, holders changed {f['steady_holders_changed']}"
    )


def live_summary(kills: int, live: dict[str, Any] | None) -> dict[str, Any]:
    """The live mode's figures, named as the simulated ones with ``live_`` in front (None
    when it did not run)."""
    f = live or {}
    out: dict[str, Any] = {"live_kills": kills}
    out.update({f"live_{key}": f.get(figure) for key, figure in LIVE_KEYS.items()})
    out["live_target_met"] = met(f) if live is not None else None
    return out


def summary(args: argparse.Namespace, found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    now, then = found["standby"], found["baseline"]
    return {
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
        "target_met": met(now),
        **live_summary(args.live_kills, found.get("live")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--baseline-kills", type=int, default=10)
    parser.add_argument("--live-kills", type=int, default=10)
    parser.add_argument("--steady-seconds", type=float, default=20.0)
    parser.add_argument("--burners", type=int, default=2)
    args = parser.parse_args()
    kills = {"standby": args.kills, "baseline": args.baseline_kills, "live": args.live_kills}
    found: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="tickfleet-failover-") as tmp:
        for mode, n in kills.items():
            if mode == "live" and n == 0:
                continue
            found[mode] = figures(run(mode, n, args.steady_seconds, args.burners, Path(tmp)))
    for name, f in found.items():
        print(report(name, f, args))
    print(json.dumps(summary(args, found)))


if __name__ == "__main__":
    main()
