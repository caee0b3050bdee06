"""A recorded session replayed by the whole fleet (API, control worker, two stream workers,
beat), heard by a consumer: at 5x, and across a SIGKILL of the stream's worker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import Fleet
from tests.support.archive import Session, record_session
from tests.support.instants import ist
from tests.support.polling import wait_until
from tests.support.processes import FleetProcess
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument

pytestmark = pytest.mark.timeout(150)
APP = "tests.support.instrumented_workers"
STREAM = "account:sim-1"
SPEED = 5.0
STEP = 0.5  # recorded seconds between two chain ticks


@dataclass
class Replaying:
    fleet: Fleet
    api: httpx.Client
    ticks: TickCollector
    chain: list[Instrument]
    archive: Path
    workers: list[FleetProcess]

    def record(self, steps: int) -> list[dict[str, Any]]:
        """A session of the chain recorded on 2026-06-09 from 10:00; its option ticks as a
        consumer of the replay must hear them."""
        session: Session = record_session(
            self.archive, self.chain, ist(2026, 6, 9, 10, 0), steps=steps, interval=STEP
        )
        return [{**orjson.loads(r["payload"]), "is_replay": True} for r in session.rows("options")]

    def subscribe(self) -> None:
        body = [{"instrument_token": i.instrument_token} for i in self.chain]
        assert self.api.post("/subscriptions", json=body).status_code == 200

    def stream(self) -> dict[str, Any]:
        return dict(self.api.get("/health").json()["streams"].get(STREAM, {}))


@pytest.fixture
def replaying(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet], tmp_path: Path
) -> Iterator[Replaying]:
    archive = tmp_path / "archive"
    settings = make_settings(
        feed="replay",
        archive_dir=archive,
        replay_date="2026-06-09",
        replay_speed=SPEED,
        watchdog_interval_seconds=1.0,
        stream_start_grace_seconds=4.0,
        reload_min_interval_seconds=1.0,
    )
    options = seed_universe(settings, with_expired=False)
    expiry = min(o.expiry for o in options if o.expiry is not None)
    near = sorted((o for o in options if o.expiry == expiry), key=lambda o: abs(o.strike - 24000))
    fleet = fleet_factory(settings, APP)
    collector = TickCollector(settings.redis_url).start()
    try:
        with fleet.starting():
            _, url = fleet.api()
            fleet.control_worker()
            workers = [fleet.stream_worker("stream-a"), fleet.stream_worker("stream-b")]
            fleet.beat()
        with httpx.Client(base_url=url, timeout=30) as api:
            yield Replaying(fleet, api, collector, near[:4], archive, workers)
    finally:
        collector.stop()


def heard(replaying: Replaying) -> list[dict[str, Any]]:
    return replaying.ticks.options()


def test_a_session_replayed_at_5x_is_heard_in_recorded_order_marked_over_a_fifth_of_its_span(
    replaying: Replaying,
) -> None:
    expected = replaying.record(steps=61)  # 30 s recorded: 6 s at 5x
    replaying.subscribe()
    replaying.ticks.wait_for(lambda c: len(c.options()) >= len(expected), 60, "the whole replay")
    time.sleep(0.5)
    got = replaying.ticks.snapshot()
    options = [r for r in got if r.channel == replaying.ticks.channels.options]
    assert [r.tick for r in options] == expected
    took, span = options[-1].at - options[0].at, (61 - 1) * STEP
    print(f"{len(options)} ticks, recorded over {span:.1f}s, replayed at 5x in {took:.2f}s")
    assert abs(took - span / SPEED) <= 0.25, took
    words = "replay of 2026-06-09 at 5\N{MULTIPLICATION SIGN} (finished)"
    wait_until(lambda: replaying.stream().get("replay") == words, 5, 0.2, "the status reported")
    assert replaying.stream()["mode"] == "replay"
    source = replaying.api.get("/chain/data").json()["status"]["source"]
    assert source["kind"] == "replay" and "Replay of 2026-06-09 at 5" in source["label"]


def test_after_a_sigkill_the_standby_resumes_the_replay_without_repeating_or_skipping(
    replaying: Replaying,
) -> None:
    expected = replaying.record(steps=401)  # 200 s recorded: 40 s at 5x
    replaying.subscribe()
    replaying.ticks.wait_for(lambda c: len(c.options()) > 40, 30, "the replay under way")
    victim = _owner_with_standby(replaying)
    before = len(heard(replaying))
    victim.kill()
    killed = time.time()
    replaying.ticks.wait_for(lambda c: len(c.options()) > before + 80, 30, "the replay resumed")
    got = heard(replaying)
    assert len({orjson.dumps(t) for t in got}) == len(got), "a tick was heard twice"
    at = [expected.index(t) for t in got]
    assert at == sorted(at) and at[0] == 0, "heard out of the recorded order"
    skipped = [b - a - 1 for a, b in pairwise(at) if b - a > 1]
    gap = _gap(replaying, killed)
    print(f"killed {victim.name}; silent {gap:.2f}s; skipped {skipped} (in flight at the kill)")
    assert len(skipped) <= 1 and sum(skipped) <= len(replaying.chain), skipped
    assert replaying.stream()["lease_holder"] != victim.name


def _owner_with_standby(replaying: Replaying, timeout: float = 20) -> FleetProcess:
    """The worker owning the stream, once another one stands by for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = replaying.stream()
        marker = s.get("standby")
        if marker and s.get("lease_holder") == s.get("owner") and marker != s.get("hostname"):
            return next(w for w in replaying.workers if s["hostname"].startswith(w.name + "@"))
        time.sleep(0.2)
    raise AssertionError(f"no standby for {STREAM}: {replaying.stream()}")


def _gap(replaying: Replaying, at: float) -> float:
    ticks = [r.at for r in replaying.ticks.snapshot() if r.channel.endswith(":options")]
    return min(t for t in ticks if t > at) - max(t for t in ticks if t <= at)
