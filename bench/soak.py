"""A simulated year against the stream processes: memory stays flat, mock state stays capped.

The predecessor's mock state grew without bound: every contract it ever priced stayed in
memory, so a stream worker that ran for months grew with the weekly listings. This soak
runs a year of listings and expiries through the code the fleet runs, in minutes:

- two stream processes, as a stream worker's pool runs them (the account's option stream,
  whose mock state is measured, and the index stream that writes the snapshot it prices
  on), each built by ``tickfleet.wiring.stream`` and run like the stream task runs it;
- a control side in this process doing what the control worker and beat do: the daily
  instrument refresh (offline universe) lists each new weekly expiry, the subscriptions
  are written through the ``Desk`` (admission, capacity), an immediate reload assigns
  them, and just after each expiry's close the ``evict-expired`` body
  (``ExpiryEvictor``, then a reload) removes the contracts that expired;
- one clock for all three processes: ``OffsetClock`` with its offset in shared memory,
  moved from the morning after an expiry to just after the next one's close, week by
  week. Intervals (leases, pacing) stay real.

Every ``--sample-seconds`` the option stream's RSS (psutil) and its mock state (assigned
tokens it holds) are sampled against simulated time. Printed: the largest state against
``MOCK_STATE_MAX_SIZE``, RSS at the end of the first simulated month against the end of
the last (median of each month's last simulated week; target growth <= 5 %), evictions
by reason (the book's ``mock_evictions_total`` and the subscriptions the fleet
deactivated), contracts listed, wall time. A plot (``bench/results/soak.png``) and the
figures (``bench/results/soak.json``) are saved; the last line printed is one JSON object.
Everything runs against one redis-server and one SQLite file this script starts and stops.

    python bench/soak.py [--weeks 52] [--contracts 60000] [--phase-seconds 1.2]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import logging
import multiprocessing
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil

from tickfleet.accounts.config import load_accounts
from tickfleet.config.settings import Settings
from tickfleet.instruments import choose_source, refresh_instruments
from tickfleet.instruments.expiry_calendar import weekly_expiries
from tickfleet.instruments.universe import UniverseSpec
from tickfleet.keyspace.streams import account_stream
from tickfleet.metrics.fleet import read_counter
from tickfleet.migrations import initialise
from tickfleet.runtime.clock import OffsetClock
from tickfleet.runtime.heap import tune_for_streaming
from tickfleet.storage.sql import make_engine
from tickfleet.stream.runner import StreamRunner
from tickfleet.stream.status import EXCLUDED_MOCK_CAP, StreamStatus
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services
from tickfleet.wiring.stream import build_account_stream, build_underlying_stream

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.redis_server import RedisServer  # noqa: E402

RESULTS = ROOT / "bench" / "results"
START = date(2026, 1, 1)  # inside the installed exchange calendar's range
TARGET_GROWTH_PCT = 5.0
WEEKS_A_YEAR = 52
EXPIRIES_LISTED_AT_START = 6  # 4 weekly + the monthly ones beyond them (the settings' defaults)
APPLY_TIMEOUT_SECONDS = 60.0
MB = 1024 * 1024
# What the option stream reports through shared memory (slots of one array of doubles).
HELD, ASSIGNED, EXCLUDED, CAPPED, VERSION, LAST_TICK, BLOCKS = range(7)


class SharedOffsetClock(OffsetClock):
    """``OffsetClock`` whose offset lives in shared memory: the driver moves it, and every
    process of the soak agrees on the simulated "now". ``monotonic`` stays the system's."""

    def __init__(self, shared: ctypes.c_double) -> None:  # no fixed offset to store
        self._shared = shared

    @property  # type: ignore[override]
    def offset(self) -> float:
        return float(self._shared.value)


# --- the stream processes -------------------------------------------------------------------


def stream_process(kind: str, values: dict[str, Any], offset: ctypes.c_double, probe: Any) -> None:
    """One stream in its own process, as the stream task runs it (GC tuned, one loop)."""
    logging.basicConfig(level=logging.ERROR, format=f"[{kind}] %(levelname)s %(message)s")
    settings = Settings(**values)
    clock = SharedOffsetClock(offset)
    accounts = load_accounts(settings)
    if kind == "options":
        runner = build_account_stream(settings, accounts[0], "soak", clock)
    else:
        runner = build_underlying_stream(settings, accounts, "soak", clock)
    tune_for_streaming()
    asyncio.run(serve(runner, probe))


async def serve(runner: StreamRunner, probe: Any) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.stop)
    reporting = asyncio.create_task(report(runner.status, probe))
    try:
        await runner.run()
    finally:
        reporting.cancel()


async def report(status: StreamStatus, probe: Any) -> None:
    """The feed's state in shared memory: held = assigned minus those it does not simulate
    (over the cap, expired, not simulable), which is what its option book holds; and the
    Python heap's live blocks, which tell a leak of objects from RSS the allocator keeps."""
    while True:
        probe[HELD] = status.tokens - len(status.excluded)
        probe[ASSIGNED] = status.tokens
        probe[EXCLUDED] = len(status.excluded)
        probe[CAPPED] = sum(1 for why in status.excluded.values() if why == EXCLUDED_MOCK_CAP)
        probe[VERSION] = status.assignment_version or 0
        probe[LAST_TICK] = status.last_tick_at or 0.0
        probe[BLOCKS] = sys.getallocatedblocks()
        await asyncio.sleep(0.05)


@dataclass
class Streams:
    """The two stream processes, the shared clock offset and the option stream's probe."""

    offset: ctypes.c_double
    probe: Any
    processes: dict[str, multiprocessing.process.BaseProcess] = field(default_factory=dict)

    def rss(self, kind: str) -> int:
        pid = self.processes[kind].pid
        assert pid is not None
        return int(psutil.Process(pid).memory_info().rss)

    def check_alive(self) -> None:
        for kind, process in self.processes.items():
            if not process.is_alive():
                raise RuntimeError(f"the {kind} stream process died (exit {process.exitcode})")

    def wait_for(self, slot: int, at_least: float, timeout: float = APPLY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while self.probe[slot] < at_least:
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the option stream did not reach {at_least} in slot {slot}")
            time.sleep(0.02)


@contextmanager
def running_streams(values: dict[str, Any], start: float) -> Iterator[Streams]:
    """Both stream processes (spawned: a fresh interpreter, as a pool process is); stopped
    with SIGTERM, which ends a stream cleanly, then waited for."""
    context = multiprocessing.get_context("spawn")
    streams = Streams(context.Value("d", start, lock=False), context.Array("d", 7, lock=False))
    probes = {"options": streams.probe, "underlying": context.Array("d", 7, lock=False)}
    try:
        for kind in ("underlying", "options"):
            process = context.Process(
                target=stream_process,
                args=(kind, values, streams.offset, probes[kind]),
                name=f"soak-{kind}",
            )
            process.start()
            streams.processes[kind] = process
        yield streams
    finally:
        for process in streams.processes.values():
            process.terminate()
        for process in streams.processes.values():
            process.join(15)
            if process.is_alive():
                process.kill()
                process.join(5)


# --- the control side -------------------------------------------------------------------------


class NoReloadTask:
    """Scheduled reloads are never needed: every reload here runs at once (``run_now``)."""

    def schedule(self, countdown: float) -> None:
        return None


class StreamsAlreadyRunning:
    """Streams are started by this script, not by the reload's launcher."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def start(self, stream: str, worker: str | None = None) -> None:
        self.asked.append(stream)


@dataclass
class Tally:
    """What the control side did over the year."""

    listed: set[int] = field(default_factory=set)
    subscribed: int = 0
    reloads: int = 0
    deactivated: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)


class Control:
    """The control worker's and beat's work on the soak's clock: refresh, subscribe,
    reload, evict, each through the fleet's own code."""

    def __init__(self, settings: Settings, clock: SharedOffsetClock) -> None:
        self.svc = Services(settings)
        self.svc.clock = clock
        self.hours = self.svc.hours
        self.tally = Tally()
        self._starter = StreamsAlreadyRunning()

    def now(self) -> datetime:
        return self.hours.at(self.svc.clock.time())

    def close(self) -> None:
        self.svc.close()

    @contextmanager
    def timed(self, step: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.tally.seconds[step] += time.perf_counter() - began

    def refresh_and_subscribe(self) -> int:
        """The morning refresh lists the new expiry; everything listed gets subscribed."""
        now = self.now()
        with self.timed("refresh"):
            source = choose_source(self.svc.settings, None)
            refresh_instruments(self.svc.registry, source, now.date(), now)
        listed = {
            i.instrument_token
            for i in self.svc.registry.query(
                expired_until=self.hours.last_expired_day(now), limit=1_000_000
            )
            if i.is_option
        }
        self.tally.listed |= listed
        active = {s.token for s in self.svc.subscriptions.active()}
        new = sorted(listed - active)
        with self.timed("subscribe"):
            result = self.svc.desk().subscribe([SubscriptionRequest(t) for t in new], now)
        if isinstance(result, list):
            raise RuntimeError(f"subscriptions refused: {result[:3]}")
        self.tally.subscribed += len(new)
        return len(new)

    def evict_expired(self) -> int:
        """The ``evict-expired`` beat task's body (the reload it requests follows)."""
        with self.timed("evict"):
            tokens = self.svc.evictor().run()
        self.tally.deactivated["evictor: contract expired"] += len(tokens)
        return len(tokens)

    def reload(self) -> int:
        """An immediate reload through the coordinator (lock and all); the saved version."""
        with self.timed("reload"):
            outcome = self.svc.coordinator(NoReloadTask()).run_now(
                self.svc.rebalancer(self._starter)
            )
        if outcome.kind != "ran" or outcome.summary is None:
            raise RuntimeError(f"reload did not run: {outcome}")
        self.tally.reloads += 1
        self.tally.deactivated["reload: expired or unlisted"] += int(outcome.summary["deactivated"])
        return int(outcome.summary["version"])

    def evictions(self) -> dict[str, int]:
        """The option book's evictions by reason, as the fleet's metrics count them."""
        return {
            reason: self._counter("mock_evictions_total", {"reason": reason})
            for reason in ("expired", "lru")
        }

    def published(self) -> dict[str, int]:
        """Ticks the option stream published, and ticks its publisher had to drop (a
        backlog at the buffer's cap would be memory the soak did not mean to measure)."""
        stream = account_stream(self.svc.accounts[0].account_id)
        return {
            "ticks": self._counter("ticks_published_total", {"stream": stream}),
            "dropped": self._counter("publish_buffer_drops_total"),
        }

    def _counter(self, name: str, labels: Mapping[str, str] | None = None) -> int:
        return int(read_counter(self.svc.redis, self.svc.settings.key_prefix, name, labels))


# --- sampling ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    simulated: float  # epoch seconds on the soak's clock
    rss_options: int
    rss_underlying: int
    held: int
    assigned: int
    excluded: int
    capped: int
    blocks: int


class Sampler:
    """Samples both stream processes every ``every`` seconds (a thread of this process)."""

    def __init__(self, streams: Streams, clock: SharedOffsetClock, every: float) -> None:
        self.samples: list[Sample] = []
        self._streams = streams
        self._clock = clock
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def take(self) -> None:
        probe = self._streams.probe
        self.samples.append(
            Sample(
                self._clock.time(),
                self._streams.rss("options"),
                self._streams.rss("underlying"),
                int(probe[HELD]),
                int(probe[ASSIGNED]),
                int(probe[EXCLUDED]),
                int(probe[CAPPED]),
                int(probe[BLOCKS]),
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.take()
            except psutil.Error:
                return  # a stream process ended; the driver notices and stops


# --- the simulated year -----------------------------------------------------------------------


def offset_to(moment: datetime) -> float:
    return moment.timestamp() - time.time()


def expiry_days(settings: Settings, weeks: int) -> list[date]:
    """The year's weekly expiry days, as the offline universe lists them."""
    spec = UniverseSpec.from_settings(settings)
    return weekly_expiries(START, spec.expiry_weekday, weeks, spec.trading)


def strikes_each_side(contracts: int) -> int:
    """Strikes each side of spot so that a year lists about ``contracts`` contracts (every
    expiry listed during it, a call and a put per strike); ``--weeks`` only shortens it."""
    per_expiry = contracts / (WEEKS_A_YEAR + EXPIRIES_LISTED_AT_START - 1)
    return max(1, round((per_expiry / 2 - 1) / 2))


@dataclass
class Year:
    """Drives the clock through the weeks and the control side through each of them."""

    control: Control
    streams: Streams
    tz: ZoneInfo
    phase_seconds: float
    tick_seconds: float
    close: tuple[int, int]
    moved_at: float = 0.0

    def move_to(self, moment: datetime) -> None:
        self.moved_at = moment.timestamp()
        self.streams.offset.value = offset_to(moment)

    def ticked(self) -> None:
        """Until the option stream has run a tick that began after the clock moved (one
        that began before may finish, and stamp its tick, after it)."""
        self.streams.wait_for(LAST_TICK, self.moved_at + self.tick_seconds / 2)

    def settle(self, version: int) -> None:
        """Until the option stream runs ``version`` and has ticked at the new time."""
        self.streams.wait_for(VERSION, version)
        self.ticked()
        time.sleep(self.phase_seconds)

    def morning(self, day: date) -> None:
        self.move_to(datetime(day.year, day.month, day.day, 8, 30, tzinfo=self.tz))
        self.control.refresh_and_subscribe()
        self.settle(self.control.reload())

    def after_close(self, day: date) -> None:
        """Just after the close: the book drops what expired on its next tick, then the
        beat's eviction and the reload it asks for."""
        hour, minute = self.close
        self.move_to(datetime(day.year, day.month, day.day, hour, minute + 1, tzinfo=self.tz))
        self.ticked()
        self.control.evict_expired()
        self.settle(self.control.reload())

    def run(self, expiries: Sequence[date], progress: Callable[[int, date], None]) -> None:
        morning = START
        for week, expiry in enumerate(expiries):
            self.morning(morning)
            self.after_close(expiry)
            progress(week, expiry)
            morning = expiry + timedelta(days=1)


# --- figures ----------------------------------------------------------------------------------


def month_of(sample: Sample, tz: ZoneInfo) -> tuple[int, int]:
    moment = datetime.fromtimestamp(sample.simulated, tz)
    return moment.year, moment.month


def end_of_month(
    samples: Sequence[Sample], month: tuple[int, int], tz: ZoneInfo, of: Callable[[Sample], int]
) -> float:
    """Median of ``of`` over the month's last simulated week (one sample would be noise)."""
    inside = [s for s in samples if month_of(s, tz) == month]
    last = max(s.simulated for s in inside)
    return statistics.median(of(s) for s in inside if s.simulated >= last - 7 * 86400)


def growth_pct(
    samples: Sequence[Sample], tz: ZoneInfo, of: Callable[[Sample], int]
) -> tuple[float, float, float]:
    """``of`` at the end of the first and of the last simulated month, and the growth."""
    months = sorted({month_of(s, tz) for s in samples})
    first = end_of_month(samples, months[0], tz, of)
    last = end_of_month(samples, months[-1], tz, of)
    return first, last, (last / first - 1.0) * 100.0


def summarise(
    samples: Sequence[Sample], control: Control, cap: int, tz: ZoneInfo
) -> dict[str, Any]:
    months = sorted({month_of(s, tz) for s in samples})
    first, last, growth = growth_pct(samples, tz, lambda s: s.rss_options)
    *_, blocks = growth_pct(samples, tz, lambda s: s.blocks)
    *_, underlying = growth_pct(samples, tz, lambda s: s.rss_underlying)
    max_held = max(s.held for s in samples)
    return {
        "max_state": max_held,
        "cap": cap,
        "state_within_cap": max_held <= cap,
        "max_assigned": max(s.assigned for s in samples),
        "max_excluded": max(s.excluded for s in samples),
        "max_over_cap": max(s.capped for s in samples),
        "rss_first_month_mb": round(first / MB, 1),
        "rss_last_month_mb": round(last / MB, 1),
        "rss_growth_pct": round(growth, 2),
        "rss_growth_within_target": growth <= TARGET_GROWTH_PCT,
        "rss_peak_mb": round(max(s.rss_options for s in samples) / MB, 1),
        "python_heap_blocks_growth_pct": round(blocks, 2),
        "rss_underlying_growth_pct": round(underlying, 2),
        "evictions": control.evictions(),
        "published": control.published(),
        "deactivated": dict(control.tally.deactivated),
        "contracts_listed": len(control.tally.listed),
        "subscribed": control.tally.subscribed,
        "reloads": control.tally.reloads,
        "samples": len(samples),
        "months": len(months),
    }


def weekly_series(samples: Sequence[Sample], tz: ZoneInfo) -> list[dict[str, Any]]:
    """One point per simulated week (the last sample in it), for the JSON file."""
    by_week: dict[tuple[int, int], Sample] = {}
    for s in samples:
        by_week[datetime.fromtimestamp(s.simulated, tz).isocalendar()[:2]] = s
    return [
        {
            "at": datetime.fromtimestamp(s.simulated, tz).isoformat(timespec="minutes"),
            "rss_mb": round(s.rss_options / MB, 2),
            "state": s.held,
            "assigned": s.assigned,
            "heap_blocks": s.blocks,
        }
        for s in by_week.values()
    ]


def plot(samples: Sequence[Sample], cap: int, tz: ZoneInfo, path: Path) -> None:
    """RSS and mock state against simulated time, on two axes."""
    # Imported here: the stream processes import this module, and matplotlib in them
    # would add its tens of MB to the RSS being measured.
    from matplotlib.figure import Figure  # noqa: PLC0415

    when = [datetime.fromtimestamp(s.simulated, tz) for s in samples]
    figure = Figure(figsize=(9, 4.2), dpi=100)
    rss_axis = figure.subplots()
    rss = [s.rss_options / MB for s in samples]
    rss_axis.plot(when, rss, color="tab:blue", lw=1.2, drawstyle="steps-post")
    rss_axis.set_ylabel("option stream RSS (MB)", color="tab:blue")
    rss_axis.set_ylim(bottom=0)
    state_axis = rss_axis.twinx()
    state = [s.held for s in samples]
    state_axis.plot(when, state, color="tab:orange", lw=0.8, drawstyle="steps-post")
    state_axis.axhline(cap, color="tab:red", ls="--", lw=0.8, label=f"MOCK_STATE_MAX_SIZE={cap}")
    state_axis.set_ylabel("mock state (contracts held)", color="tab:orange")
    state_axis.set_ylim(0, cap * 1.25)
    state_axis.legend(loc="lower right", fontsize=8)
    rss_axis.set_xlabel("simulated date")
    rss_axis.set_title("bench/soak.py: a simulated year of weekly expiries")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path)


def report_figures(figures: Mapping[str, Any], wall: float) -> None:
    verdict = "OK" if figures["state_within_cap"] else "EXCEEDED"
    print(f"mock state: max {figures['max_state']} held, cap {figures['cap']}: {verdict}")
    print(
        f"  assigned up to {figures['max_assigned']}; up to {figures['max_over_cap']} assigned "
        "tokens held back by the cap (excluded as mock_cap, taken in as room frees up)"
    )
    growth = "OK" if figures["rss_growth_within_target"] else "MISSED"
    print(
        f"option stream RSS: {figures['rss_first_month_mb']} MB end of first month, "
        f"{figures['rss_last_month_mb']} MB end of last, growth {figures['rss_growth_pct']} % "
        f"(target <= {TARGET_GROWTH_PCT:g} %: {growth}); peak {figures['rss_peak_mb']} MB"
    )
    print(
        f"  Python heap (live blocks) of the option stream: "
        f"{figures['python_heap_blocks_growth_pct']} % over the same months; "
        f"index stream RSS: {figures['rss_underlying_growth_pct']} %"
    )
    print(f"book evictions by reason: {figures['evictions']}")
    published = figures["published"]
    print(f"option ticks published {published['ticks']:,}, dropped {published['dropped']:,}")
    if published["dropped"]:
        print(
            "  the publisher fell behind and its buffer reached its cap (100,000 ticks, about "
            "90 MB here): RSS then measures that buffer, not the mock state"
        )
    print(f"subscriptions deactivated: {figures['deactivated']}")
    print(
        f"contracts listed {figures['contracts_listed']}, subscribed {figures['subscribed']}, "
        f"{figures['reloads']} reloads; {figures['samples']} samples over "
        f"{figures['months']} simulated months; wall {wall:.0f} s"
    )


# --- main -------------------------------------------------------------------------------------


def settings_values(args: argparse.Namespace, redis_url: str, workdir: Path) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "database_url": f"sqlite:///{workdir / 'soak.db'}",
        "mock_strikes_each_side": strikes_each_side(args.contracts),
        "mock_tick_interval_seconds": args.tick_seconds,
        "mock_state_max_size": args.cap,
        "mock_seed": 7,
        "kite_ticker_url": "ws://127.0.0.1:9",  # never asked: no account has credentials
        "kite_api_url": "http://127.0.0.1:9",
        "log_level": "ERROR",
    }


def soak(args: argparse.Namespace, values: dict[str, Any]) -> tuple[dict[str, Any], list[Sample]]:
    settings = Settings(**values)
    tz = ZoneInfo(settings.market_timezone)
    begin = datetime(START.year, START.month, START.day, 8, 0, tzinfo=tz)
    engine = make_engine(settings.database_url, create=True)
    initialise(engine, begin)
    engine.dispose()
    expiries = expiry_days(settings, args.weeks)
    with running_streams(values, offset_to(begin)) as streams:
        clock = SharedOffsetClock(streams.offset)
        control = Control(settings, clock)
        sampler = Sampler(streams, clock, args.sample_seconds)
        try:
            year = Year(
                control, streams, tz, args.phase_seconds, args.tick_seconds, _close(settings)
            )
            with sampler:
                year.run(expiries, _progress(expiries, streams, sampler))
            streams_stopped(streams)
            figures = summarise(sampler.samples, control, settings.mock_state_max_size, tz)
        finally:
            control.close()
    figures["seconds_by_step"] = {k: round(v, 1) for k, v in control.tally.seconds.items()}
    return figures, sampler.samples


def streams_stopped(streams: Streams) -> None:
    """Stop the streams before reading their counters: they flush metrics on the way out."""
    for process in streams.processes.values():
        process.terminate()
    for process in streams.processes.values():
        process.join(15)


def _close(settings: Settings) -> tuple[int, int]:
    return settings.market_close.hour, settings.market_close.minute


def _progress(
    expiries: Sequence[date], streams: Streams, sampler: Sampler
) -> Callable[[int, date], None]:
    began = time.monotonic()

    def progress(week: int, expiry: date) -> None:
        sampler.take()
        if week % 4 == 3 or week == len(expiries) - 1:
            print(
                f"week {week + 1:2d}/{len(expiries)} (expiry {expiry}): "
                f"state {int(streams.probe[HELD])}, RSS {streams.rss('options') / MB:.1f} MB, "
                f"{time.monotonic() - began:.0f} s",
                flush=True,
            )

    return progress


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--weeks", type=int, default=WEEKS_A_YEAR, help="weekly expiries")
    parser.add_argument("--contracts", type=int, default=60_000, help="listed in a year")
    parser.add_argument("--cap", type=int, default=5000, help="MOCK_STATE_MAX_SIZE")
    parser.add_argument("--phase-seconds", type=float, default=1.0, help="ticking per phase")
    parser.add_argument("--tick-seconds", type=float, default=1.0, help="mock tick interval")
    parser.add_argument("--sample-seconds", type=float, default=0.25)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where soak.png/json go")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as workdir:
        server = RedisServer(Path(workdir)).start()
        try:
            values = settings_values(args, server.url, Path(workdir))
            figures, samples = soak(args, values)
        finally:
            server.stop()
    wall = time.monotonic() - began
    figures["wall_seconds"] = round(wall, 1)
    figures["weeks"] = args.weeks
    figures["strikes_each_side"] = values["mock_strikes_each_side"]
    report_figures(figures, wall)

    tz = ZoneInfo(Settings(**values).market_timezone)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(samples, figures["cap"], tz, args.out / "soak.png")
    series = weekly_series(samples, tz)
    (args.out / "soak.json").write_text(json.dumps({**figures, "weekly": series}, indent=1))
    print(f"saved {args.out / 'soak.png'} and {args.out / 'soak.json'}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
