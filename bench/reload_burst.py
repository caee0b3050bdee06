"""API throughput for a burst of subscription POSTs, on SQLite and PostgreSQL, against the
predecessor's one-reload-per-request way, measured in the same run.

1000 POST /subscriptions (one distinct token each) are sent by 50 concurrent clients
(asyncio, one keep-alive connection each, a hand-written HTTP/1.1 exchange so the load
generator costs the two cores little; every connection carries one GET /health before
the clock starts) to a real fleet: a redis-server this script starts on
a free loopback port, ``uvicorn`` serving the API (one process, as ``make run`` does) and
one control Celery worker (``-Q control,maintenance -c 2``), all started with the
environment of ``Settings.to_env()``.

- sqlite: the production code on a SQLite file (debounce 1 s, max wait 5 s, min interval 5 s).
- postgres: the same on PostgreSQL (127.0.0.1:5432, db ``test``) in a private schema that
  is dropped afterwards; skipped, with a note, when PostgreSQL does not answer.
- naive (the baseline): the predecessor's reloads on SQLite, every request runs its own
  reload at once, no coalescing, no debounce, no lock (``bench.naive_reload``, which
  patches the coordinator in the API and worker processes only).

Every mode records its reload bodies in Redis (``tests.support.instrumented_workers``).
For each: requests/s over the burst, client-side latency (p50/p99), reload runs, and the
time from the first request until the fleet has settled: ``/health`` shows every request
served (``done_generation == generation``) and no reload scheduled or running. Settling is
awaited at most ``--settle-timeout`` seconds. Every mode gets a flushed Redis and a fresh
database; every process started is stopped. The last line printed is one JSON object,
with ``ratio`` (SQLite requests/s over the baseline's) and ``sqlite_p99_ms``; the target
(``target_met``) is a ratio of at least 8 and a p99 of at most 100 ms.

    python bench/reload_burst.py [--requests 1000] [--clients 50] [--settle-timeout 120]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.ports import free_port, wait_for_port  # noqa: E402
from tests.support.processes import BIN, FleetProcess, celery_worker_argv  # noqa: E402
from tests.support.redis_server import RedisServer  # noqa: E402
from tests.support.runs import Run, reload_runs  # noqa: E402
from tests.support.seed import now_of, seed_universe  # noqa: E402
from tickfleet.config.settings import Settings  # noqa: E402
from tickfleet.market.hours import MarketHours  # noqa: E402

STRIKES_EACH_SIDE = 100  # 2814 options in the offline universe: enough distinct tokens
START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 30.0
POLL_SECONDS = 0.2
PAGE = 1000  # the API's largest page of GET /subscriptions
FAILED_RUN = re.compile(r"'kind': 'failed', 'generation': \d+, 'error': '(\w+)")
POSTGRES_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
TARGET_RATIO = 8.0  # sqlite requests/s over the same run's baseline: a loaded machine slows both
TARGET_P99_MS = 100.0


@dataclass(frozen=True)
class Mode:
    name: str
    worker_app: str
    api_app: str
    database: str  # "sqlite" or "postgres"


SQLITE = Mode("sqlite", "tests.support.instrumented_workers", "producers.api:app", "sqlite")
POSTGRES = Mode("postgres", "tests.support.instrumented_workers", "producers.api:app", "postgres")
NAIVE = Mode("naive", "bench.naive_reload", "bench.naive_reload:api", "sqlite")


@dataclass
class Burst:
    latencies: list[float]
    errors: list[str]
    started: float  # time.time() of the first request
    seconds: float


@dataclass
class Settled:
    settled: bool
    reflected_s: float | None  # every request seen by a finished reload
    settle_s: float | None  # ... and nothing scheduled or running any more
    waited_s: float
    reload: dict[str, Any]


# --- databases and the fleet ----------------------------------------------------------------


def postgres_answers() -> bool:
    try:
        with psycopg.connect(POSTGRES_DSN, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


@contextmanager
def database(mode: Mode, moddir: Path) -> Iterator[str]:
    """A fresh database for ``mode``: a SQLite file, or a private PostgreSQL schema that is
    dropped afterwards."""
    if mode.database == "sqlite":
        yield f"sqlite:///{moddir}/tickfleet.db"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextmanager
def fleet(
    mode: Mode, settings: Settings, logdir: Path
) -> Iterator[tuple[int, FleetProcess, FleetProcess]]:
    """A control worker and the API of ``mode``; yields the API's port, the worker, the API."""
    env = {**settings.to_env(), "PYTHONUNBUFFERED": "1"}
    processes: list[FleetProcess] = []
    try:
        argv = celery_worker_argv(mode.worker_app, "control", "control,maintenance", 2)
        worker = FleetProcess("worker", argv, env, logdir)
        processes.append(worker)
        port = free_port()
        # No access log: what `python -m producers.api` runs by default (TICKFLEET_API_ACCESS_LOG).
        api_argv = [str(BIN / "uvicorn"), mode.api_app, "--host", "127.0.0.1", "--no-access-log"]
        api = FleetProcess("api", [*api_argv, "--port", str(port)], env, logdir)
        processes.append(api)
        worker.wait_for_log("ready.", timeout=START_TIMEOUT)
        wait_for_port(port, timeout=START_TIMEOUT)
        api.wait_for_log("Application startup complete", timeout=START_TIMEOUT)
        yield port, worker, api
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


# --- the burst ------------------------------------------------------------------------------


def post_bytes(token: int) -> bytes:
    body = json.dumps({"instrument_token": token}).encode()
    head = (
        "POST /subscriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """One request on a keep-alive connection; the API answers with a Content-Length."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *headers = head.decode("latin-1").split("\r\n")
    length = next(
        (
            int(v)
            for k, _, v in (h.partition(":") for h in headers)
            if k.lower() == "content-length"
        ),
        None,
    )
    if length is None:
        raise ValueError("response without Content-Length")
    return int(status_line.split()[1]), await reader.readexactly(length)


def problem_of(token: int, status: int, body: bytes) -> str:
    """Empty when the request was served and requested a reload."""
    if status in (200, 201) and json.loads(body)["reload"]["requested"]:
        return ""
    return f"{token}: HTTP {status} {body[:200]!r}"


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
HEALTH = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def warm_connection(port: int) -> Connection:
    """A keep-alive connection that has carried one GET /health. All clients warm up at
    once, so the API has accepted them and started its pool threads before the clock
    starts: without this the first wave of 50 POSTs also paid for 50 connection set-ups
    and 40 thread starts, and those 50 were the p99 of a 1000-request burst."""
    connection = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.wait_for(exchange(*connection, HEALTH), REQUEST_TIMEOUT)
    return connection


async def client_loop(
    port: int,
    connection: Connection | None,
    tokens: list[int],
    latencies: list[float],
    errors: list[str],
) -> None:
    """One client: its tokens one after another on one connection, each request timed."""
    try:
        for token in tokens:
            began = time.perf_counter()
            try:
                connection = connection or await asyncio.open_connection("127.0.0.1", port)
                status, body = await asyncio.wait_for(
                    exchange(*connection, post_bytes(token)), REQUEST_TIMEOUT
                )
                problem = problem_of(token, status, body)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
                problem = f"{token}: {type(exc).__name__}: {exc}"
                if connection is not None:
                    connection[1].close()
                connection = None  # the exchange is broken: a new connection
            latencies.append(time.perf_counter() - began)
            if problem:
                errors.append(problem)
    finally:
        if connection is not None:
            connection[1].close()


async def send_burst(port: int, tokens: list[int], clients: int) -> Burst:
    latencies: list[float] = []
    errors: list[str] = []
    connections = await asyncio.gather(*(warm_connection(port) for _ in range(clients)))
    started, began = time.time(), time.perf_counter()
    await asyncio.gather(
        *(
            client_loop(port, connection, tokens[i::clients], latencies, errors)
            for i, connection in enumerate(connections)
        )
    )
    return Burst(latencies, errors, started, time.perf_counter() - began)


def burst(url: str, port: int, tokens: list[int], clients: int) -> Burst:
    """Send one request per token from ``clients`` concurrent connections."""
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        client.get("/health").raise_for_status()  # the API's own connections are warm
    sent = asyncio.run(send_burst(port, tokens, clients))
    for problem in sent.errors[:5]:
        print(f"  request failed: {problem}")
    return sent


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
    count, offset = 0, 0
    with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
        while True:
            params: dict[str, str | int] = {"status": "active", "limit": PAGE, "offset": offset}
            subs = client.get("/subscriptions", params=params).json()
            count += sum(1 for s in subs if s["account"] is not None)
            if len(subs) < PAGE:
                return count
            offset += PAGE


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
    """Fresh Redis and database, the fleet of ``mode``, the burst, then settling."""
    server.client().flushall()
    moddir = workdir / mode.name
    moddir.mkdir()
    with database(mode, moddir) as database_url:
        settings = Settings(
            redis_url=server.url,
            database_url=database_url,
            mock_strikes_each_side=STRIKES_EACH_SIDE,
        )
        tokens = choose_tokens(settings, args.requests)
        print(f"{mode.name}: starting the fleet", flush=True)
        with fleet(mode, settings, moddir) as (port, worker, _api):
            url = f"http://127.0.0.1:{port}"
            sent = burst(url, port, tokens, args.clients)
            print(f"{mode.name}: burst sent in {sent.seconds:.2f} s; settling", flush=True)
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
        "rps": round(len(sent.latencies) / sent.seconds, 1),
        "p50_ms": round(percentile(sent.latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(sent.latencies, 99) * 1000, 2),
        "burst_s": round(sent.seconds, 3),
        "errors": len(sent.errors),
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
    print(f"  requests/s:              {f['rps']:9.1f}  ({f['errors']} failed requests)")
    print(f"  API latency p50 / p99:   {f['p50_ms']:9.2f} / {f['p99_ms']:.2f} ms")
    print(f"  burst wall time:         {f['burst_s']:9.2f} s")
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


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if numerator is not None and denominator else None


def met(sqlite_ratio: float | None, sqlite_p99_ms: float) -> bool:
    return (
        sqlite_ratio is not None and sqlite_ratio >= TARGET_RATIO and sqlite_p99_ms <= TARGET_P99_MS
    )


def mode_summary(prefix: str, f: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("rps", "p50_ms", "p99_ms", "errors", "reloads", "settled", "settle_s")
    return {f"{prefix}_{k}": (f[k] if f is not None else None) for k in keys}


def summary(results: dict[str, dict[str, Any] | None], args: argparse.Namespace) -> dict[str, Any]:
    sqlite, postgres, naive = results["sqlite"], results["postgres"], results["naive"]
    assert sqlite is not None and naive is not None
    naive_settle = naive["settle_s"] if naive["settled"] else naive["waited_s"]
    return {
        "requests": args.requests,
        "clients": args.clients,
        **mode_summary("sqlite", sqlite),
        **mode_summary("postgres", postgres),
        **mode_summary("baseline", naive),
        "baseline_settle_s": naive_settle,
        "ratio": ratio(sqlite["rps"], naive["rps"]),
        "postgres_ratio": ratio(postgres["rps"], naive["rps"]) if postgres else None,
        "reload_ratio": ratio(naive["reloads"], sqlite["reloads"]),
        "settle_ratio": ratio(naive_settle, sqlite["settle_s"]),
        "settle_ratio_is_lower_bound": not naive["settled"],
        "target_met": met(ratio(sqlite["rps"], naive["rps"]), sqlite["p99_ms"]),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def report(results: dict[str, dict[str, Any] | None], args: argparse.Namespace) -> None:
    print(f"{args.requests} POST /subscriptions from {args.clients} concurrent clients")
    cores, load = os.cpu_count(), os.getloadavg()[0]
    print(f"{cores} cores, load average {load:.2f} (client and fleet share the machine)")
    for found in results.values():
        if found is not None:
            describe(found)
    if results["postgres"] is None:
        print("[postgres]\n  skipped: PostgreSQL on 127.0.0.1:5432 (db test) does not answer")
    out = summary(results, args)
    print(f"{'':10s}{'req/s':>9s}{'p50 ms':>10s}{'p99 ms':>10s}{'vs naive':>10s}")
    for name in ("sqlite", "postgres", "baseline"):
        if out[f"{name}_rps"] is None:
            continue
        vs = ratio(out[f"{name}_rps"], out["baseline_rps"])
        row = [out[f"{name}_rps"], out[f"{name}_p50_ms"], out[f"{name}_p99_ms"]]
        print(f"{name:10s}{row[0]:9.1f}{row[1]:10.2f}{row[2]:10.2f}{vs:9.2f}x")
    verdict = "met" if out["target_met"] else "NOT met"
    print(f"target (sqlite >= {TARGET_RATIO:g}x baseline, p99 <= {TARGET_P99_MS:g} ms): {verdict}")
    print(f"naive / bounded reload runs: {out['reload_ratio']}")
    if out["settle_ratio"] is None:
        print("naive / bounded settle time: n/a (bounded did not settle)")
    else:
        bound = " (lower bound: naive did not settle)" if not naive_settled(results) else ""
        print(f"naive / bounded settle time: {out['settle_ratio']}{bound}")
    print(json.dumps(out))


def naive_settled(results: dict[str, dict[str, Any] | None]) -> bool:
    naive = results["naive"]
    return naive is not None and bool(naive["settled"])


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

    modes = [SQLITE, POSTGRES, NAIVE]
    if not postgres_answers():
        modes.remove(POSTGRES)
    results: dict[str, dict[str, Any] | None] = {"sqlite": None, "postgres": None, "naive": None}
    with workspace(args.keep) as workdir:
        server = RedisServer(workdir / "redis").start()
        try:
            for mode in modes:
                results[mode.name] = run_mode(mode, server, workdir, args)
        finally:
            server.stop()
    report(results, args)


if __name__ == "__main__":
    main()
