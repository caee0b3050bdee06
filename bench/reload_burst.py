"""A burst of subscription requests against a real fleet: bounded reloads against naive ones.

1000 POST /subscriptions (one distinct token each) are sent by 50 concurrent clients to
a real fleet: a redis-server this script starts on a free loopback port, a SQLite file in
a temporary directory, ``uvicorn`` serving the API and one control Celery worker
(``-Q control,maintenance -c 2``), all started with the environment of ``Settings.to_env()``.

- bounded: the production code as it is (debounce 1 s, max wait 5 s, min interval 5 s).
- naive: the predecessor's way, every request runs its own reload at once, no coalescing,
  no debounce, no lock (``bench.naive_reload``, which patches the coordinator in the API
  and worker processes only).

Both modes record every reload body run in Redis (``tests.support.instrumented_workers``).
For each mode: client-side latency (p50/p99), burst wall time, reload runs, and the time
from the first request until the fleet has settled: ``/health`` shows every request served
(``done_generation == generation``) and no reload scheduled or running. The time until
every request is reflected in an assignment (``done_generation == generation`` alone) is
reported too. Settling is awaited at most ``--settle-timeout`` seconds; a mode that did
not settle reports the runs completed by then. Every mode gets a flushed Redis and a fresh
SQLite file; every process started is stopped. The last line printed is one JSON object.

    python bench/reload_burst.py [--requests 1000] [--clients 50] [--settle-timeout 120]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.ports import free_port, wait_for_port  # noqa: E402
from tests.support.processes import BIN, FleetProcess, celery_worker_argv  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.runs import Run, reload_runs  # noqa: E402
from tests.support.seed import now_of, seed_universe  # noqa: E402
from tickfleet.market.hours import MarketHours  # noqa: E402
from tickfleet.settings import Settings  # noqa: E402

STRIKES_EACH_SIDE = 100  # 2814 options in the offline universe: enough distinct tokens
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
POLL_SECONDS = 0.2
FAILED_RUN = re.compile(r"'kind': 'failed', 'generation': \d+, 'error': '(\w+)")


@dataclass(frozen=True)
class Mode:
    name: str
    worker_app: str
    api_app: str


BOUNDED = Mode("bounded", "tests.support.instrumented_workers", "producers.api:app")
NAIVE = Mode("naive", "bench.naive_reload", "bench.naive_reload:api")


@dataclass
class Burst:
    latencies: list[float]
    errors: int
    started: float  # time.time() of the first request
    seconds: float


@dataclass
class Settled:
    settled: bool
    reflected_s: float | None  # every request seen by a finished reload
    settle_s: float | None  # ... and nothing scheduled or running any more
    waited_s: float
    reload: dict[str, Any]


# --- the fleet ------------------------------------------------------------------------------


@contextmanager
def fleet(mode: Mode, settings: Settings, logdir: Path) -> Iterator[tuple[str, FleetProcess]]:
    """A control worker and the API of ``mode``; yields the API's URL and the worker."""
    env = {**settings.to_env(), "PYTHONUNBUFFERED": "1"}
    processes: list[FleetProcess] = []
    try:
        argv = celery_worker_argv(mode.worker_app, "control", "control,maintenance", 2)
        worker = FleetProcess("worker", argv, env, logdir)
        processes.append(worker)
        port = free_port()
        api_argv = [str(BIN / "uvicorn"), mode.api_app, "--host", "127.0.0.1"]
        api = FleetProcess("api", [*api_argv, "--port", str(port)], env, logdir)
        processes.append(api)
        worker.wait_for_log("ready.", timeout=START_TIMEOUT)
        wait_for_port(port, timeout=START_TIMEOUT)
        api.wait_for_log("Application startup complete", timeout=START_TIMEOUT)
        yield f"http://127.0.0.1:{port}", worker
    finally:
        for process in reversed(processes):
            process.stop()


def choose_tokens(settings: Settings, count: int) -> list[int]:
    """Seed the offline universe and pick ``count`` distinct, unexpired option tokens."""
    options = seed_universe(settings)
    now, hours = now_of(settings), MarketHours.from_settings(settings)
    tokens = [o.instrument_token for o in options if not hours.is_expired(o.expiry, now)]
    if len(tokens) < count:
        raise SystemExit(f"only {len(tokens)} options in the universe, {count} wanted")
    return tokens[:count]


# --- the burst ----------------------------------------------------------------------------


def client_loop(
    client: httpx.Client, tokens: list[int], latencies: list[float], errors: list[str]
) -> None:
    """One client: its tokens one after another, each request timed on its own."""
    for token in tokens:
        began = time.perf_counter()
        try:
            response = client.post("/subscriptions", json={"instrument_token": token})
            ok = response.status_code in (200, 201) and response.json()["reload"]["requested"]
            problem = "" if ok else f"{token}: HTTP {response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            problem = f"{token}: {type(exc).__name__}: {exc}"
        latencies.append(time.perf_counter() - began)
        if problem:
            errors.append(problem)


def burst(url: str, tokens: list[int], clients: int) -> Burst:
    """Send one request per token from ``clients`` threads sharing one connection pool."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    errors: list[str] = []
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT, limits=limits) as client:
        client.get("/health").raise_for_status()  # the API's connections are warm
        threads = [
            threading.Thread(
                target=client_loop, args=(client, tokens[i::clients], latencies, errors)
            )
            for i in range(clients)
        ]
        started, began = time.time(), time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT * len(tokens))
        seconds = time.perf_counter() - began
    for problem in errors[:5]:
        print(f"  request failed: {problem}")
    return Burst(latencies, len(errors), started, seconds)


# --- settling -------------------------------------------------------------------------------


def reload_status(client: httpx.Client) -> dict[str, Any] | None:
    try:
        reload: dict[str, Any] | None = client.get("/health").json().get("reload")
    except (httpx.HTTPError, ValueError):
        return None
    return reload


def wait_settled(url: str, started: float, timeout: float) -> Settled:
    """Poll /health until every request is served and no reload is scheduled or running.

    ``timeout`` counts from ``started`` (the first request), like the figures.
    """
    reflected: float | None = None
    reload: dict[str, Any] = {}
    with httpx.Client(base_url=url, timeout=5.0) as client:
        while True:  # at least one look, even when the burst outlasted the timeout
            reload = reload_status(client) or reload
            done = reload.get("generation", 0) == reload.get("done_generation", -1) > 0
            if done and reflected is None:
                reflected = time.time() - started
            if done and not reload["scheduled"] and not reload["running"]:
                return Settled(True, reflected, time.time() - started, 0.0, reload)
            if time.time() >= started + timeout:
                return Settled(False, reflected, None, time.time() - started, reload)
            time.sleep(POLL_SECONDS)


def failed_runs(worker_log: str) -> dict[str, int]:
    """Failed reload runs by exception type, from the task results the worker logged."""
    return dict(Counter(FAILED_RUN.findall(worker_log)))


def placed(url: str) -> int:
    """Active subscriptions placed on an account connection by the last reload."""
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        subs = client.get("/subscriptions", params={"status": "active"}).json()
    return sum(1 for s in subs if s["account"] is not None)


# --- one mode -------------------------------------------------------------------------------


def percentile(values: list[float], pct: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def overlaps(runs: list[Run]) -> int:
    """Runs that started before an earlier run had finished."""
    count = 0
    latest_end = float("-inf")
    for run in runs:
        if run.start < latest_end:
            count += 1
        latest_end = max(latest_end, run.end if run.end is not None else float("inf"))
    return count


def run_mode(
    mode: Mode, server: RedisServer, workdir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Fresh Redis and SQLite, the fleet of ``mode``, the burst, then settling."""
    server.client().flushall()
    moddir = workdir / mode.name
    moddir.mkdir()
    settings = Settings(
        redis_url=server.url,
        database_url=f"sqlite:///{moddir}/tickfleet.db",
        mock_strikes_each_side=STRIKES_EACH_SIDE,
    )
    tokens = choose_tokens(settings, args.requests)
    print(f"{mode.name}: starting the fleet", flush=True)
    with fleet(mode, settings, moddir) as (url, worker):
        sent = burst(url, tokens, args.clients)
        print(f"{mode.name}: burst sent in {sent.seconds:.2f} s; waiting to settle", flush=True)
        settled = wait_settled(url, sent.started, args.settle_timeout)
        runs = reload_runs(server.client())
        placed_tokens = placed(url)
        failures = failed_runs(worker.log())
    return {**figures(mode, sent, settled, runs, placed_tokens), "failures": failures}


def figures(
    mode: Mode, sent: Burst, settled: Settled, runs: list[Run], placed: int
) -> dict[str, Any]:
    finished = [r for r in runs if r.end is not None]
    return {
        "mode": mode.name,
        "p50_ms": round(percentile(sent.latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(sent.latencies, 99) * 1000, 2),
        "burst_s": round(sent.seconds, 3),
        "errors": sent.errors,
        "reloads": len(runs),
        "reloads_finished": len(finished),
        "overlapping_runs": overlaps(runs),
        "settled": settled.settled,
        "settle_s": round(settled.settle_s, 2) if settled.settle_s is not None else None,
        "reflected_s": round(settled.reflected_s, 2) if settled.reflected_s is not None else None,
        "waited_s": round(settled.waited_s, 2),
        "generation": settled.reload.get("generation"),
        "done_generation": settled.reload.get("done_generation"),
        "failed_runs": settled.reload.get("failed_runs"),
        "placed": placed,
    }


# --- report ---------------------------------------------------------------------------------


def describe(f: dict[str, Any]) -> None:
    print(f"[{f['mode']}]")
    print(f"  API latency p50 / p99:   {f['p50_ms']:9.2f} / {f['p99_ms']:.2f} ms")
    print(f"  burst wall time:         {f['burst_s']:9.2f} s  ({f['errors']} failed requests)")
    print(
        f"  reload runs:             {f['reloads']:9d}  ({f['reloads_finished']} finished, "
        f"{f['overlapping_runs']} overlapping, {f['failed_runs']} failed)"
    )
    for kind, count in f["failures"].items():
        print(f"  failed runs:             {count:9d}  {kind}")
    if f["settled"]:
        print(f"  settled after:           {f['settle_s']:9.2f} s from the first request")
    else:
        print(f"  NOT settled after:       {f['waited_s']:9.2f} s from the first request")
    reflected = f"{f['reflected_s']:9.2f} s" if f["reflected_s"] is not None else "    never"
    print(f"  all requests reflected:  {reflected}")
    print(f"  generation done/total:   {f['done_generation']} / {f['generation']}")
    print(f"  tokens placed:           {f['placed']:9d}")


def ratio(naive: float | None, bounded: float | None) -> float | None:
    return round(naive / bounded, 2) if naive is not None and bounded else None


def summary(
    bounded: dict[str, Any], naive: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    naive_settle = naive["settle_s"] if naive["settled"] else naive["waited_s"]
    return {
        "requests": args.requests,
        "clients": args.clients,
        "p50_ms": bounded["p50_ms"],
        "p99_ms": bounded["p99_ms"],
        "burst_s": bounded["burst_s"],
        "reloads": bounded["reloads"],
        "settled": bounded["settled"],
        "settle_s": bounded["settle_s"],
        "reflected_s": bounded["reflected_s"],
        "naive_p50_ms": naive["p50_ms"],
        "naive_p99_ms": naive["p99_ms"],
        "naive_burst_s": naive["burst_s"],
        "naive_reloads": naive["reloads"],
        "naive_reloads_finished": naive["reloads_finished"],
        "naive_settled": naive["settled"],
        "naive_settle_s": naive_settle,
        "naive_reflected_s": naive["reflected_s"],
        "naive_failed_runs": naive["failed_runs"],
        "reload_ratio": ratio(naive["reloads"], bounded["reloads"]),
        "settle_ratio": ratio(naive_settle, bounded["settle_s"]),
        "settle_ratio_is_lower_bound": not naive["settled"],
    }


@contextmanager
def workspace(keep: Path | None) -> Iterator[Path]:
    """A throw-away directory, or ``keep`` (created, must not exist yet) when given."""
    if keep is not None:
        keep.mkdir(parents=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="bench-reload-burst-") as workdir:
        yield Path(workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument(
        "--settle-timeout", type=float, default=120.0, help="per mode, from the first request"
    )
    parser.add_argument("--keep", type=Path, help="keep databases and process logs here")
    args = parser.parse_args()

    results: dict[str, dict[str, Any]] = {}
    with workspace(args.keep) as workdir:
        server = RedisServer(workdir / "redis").start()
        try:
            for mode in (BOUNDED, NAIVE):
                results[mode.name] = run_mode(mode, server, workdir, args)
        finally:
            server.stop()

    bounded, naive = results["bounded"], results["naive"]
    print(f"{args.requests} POST /subscriptions from {args.clients} concurrent clients")
    describe(bounded)
    describe(naive)
    out = summary(bounded, naive, args)
    print(f"naive / bounded reload runs: {out['reload_ratio']}")
    if out["settle_ratio"] is None:
        print("naive / bounded settle time: n/a (bounded did not settle)")
    else:
        bound = " (lower bound: naive did not settle)" if not naive["settled"] else ""
        print(f"naive / bounded settle time: {out['settle_ratio']}{bound}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
