"""A stream owns what it opens: 50 starts and stops in one process leave nothing behind.

Four ways a stream ends, in turn: a normal stop, its lease stolen, a feed that keeps
raising until the restart budget is spent, and cancellation of its task. After every
cycle the process's open file descriptors and the server's connections named for the
stream are back where they started; a stream starts one thread, its archive writer
(``tickfleet.archive.recorder``), and leaves none behind.
"""

from __future__ import annotations

import asyncio
import gc
import os
import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace

import pytest
import redis

from tests.support.instants import FLEET_NOW
from tests.support.polling import wait_until
from tickfleet.accounts.config import Account
from tickfleet.assignment.plan import Assignment, Placement, Plan
from tickfleet.assignment.store import AssignmentStore
from tickfleet.config.settings import Settings
from tickfleet.instruments import UniverseSpec, generate_universe
from tickfleet.keyspace.keys import Keys
from tickfleet.keyspace.streams import account_stream
from tickfleet.market.snapshot import MockUnderlyingSnapshot
from tickfleet.runtime.clock import clock_from_settings
from tickfleet.stream.runner import StreamRunner
from tickfleet.supervision import SupervisorFailed
from tickfleet.wiring.stream import build_account_stream, stream_config

pytestmark = [pytest.mark.timeout(240), pytest.mark.processes]

CYCLES = 50
ACCOUNT = Account("sim-1", None, None, 3)
NAME = account_stream("sim-1")


class Broken:
    """A feed that raises every time it runs."""

    async def run(self) -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("feed broke")

    async def apply(self, assignment: Assignment) -> None:
        return None

    def forget(self, tokens: Collection[int]) -> None:
        return None

    @property
    def excluded(self) -> Mapping[int, str]:
        return {}


def open_fds() -> int:
    """Descriptors open now, after collecting garbage (earlier tests may leave sockets that
    only a collection closes, which would move the count while this test runs)."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def stream_connections(client: redis.Redis) -> int:
    return sum(1 for c in client.client_list() if c.get("name", "").startswith(NAME))


def seed(settings: Settings, client: redis.Redis) -> None:
    """An assignment of 20 options to sim-1, their catalog rows, and an index snapshot."""
    universe = generate_universe(FLEET_NOW.date(), 24000.0, UniverseSpec.from_settings(settings))
    options = [i for i in universe if i.is_option][:20]
    plan = Plan(
        placements={o.instrument_token: Placement("sim-1", 0) for o in options},
        modes={o.instrument_token: "FULL" for o in options},
        unassigned={},
        kept=0,
        moved=0,
        added=len(options),
        removed=0,
    )
    AssignmentStore(client, Keys(settings.key_prefix)).save(Assignment(), plan, options, "db", 0.0)
    snapshot = MockUnderlyingSnapshot(
        1, "NIFTY 50", 24000.0, 24000.0, 24000.0, 24000.0, 24000.0, 0, 0.0
    )
    client.set(Keys(settings.key_prefix).market_snapshot("NIFTY"), snapshot.to_json())


async def one_cycle(kind: str, settings: Settings, client: redis.Redis) -> str:
    clock = clock_from_settings(settings)
    if kind == "raising":
        config = replace(stream_config(settings), restart_limit=2)
        runner = StreamRunner(NAME, "test-host", config, lambda parts: Broken(), clock)
    else:
        runner = build_account_stream(settings, ACCOUNT, "test-host", clock)
    task = asyncio.create_task(runner.run())
    if kind == "raising":
        with pytest.raises(SupervisorFailed, match="feed"):
            await asyncio.wait_for(task, 30)
        return "failed"
    await until(lambda: runner.status.last_tick_at is not None, 10)
    assert threading.active_count() == THREADS[0] + 1, "one thread: the archive writer"
    keys = Keys(settings.key_prefix)
    if kind == "stop":
        runner.stop()
        assert await asyncio.wait_for(task, 10) == "stopped"
        assert client.get(keys.stream_lease(NAME)) is None, "lease released"
    elif kind == "stolen":
        client.set(keys.stream_lease(NAME), "someone-else")
        with pytest.raises(SupervisorFailed, match="lease"):
            await asyncio.wait_for(task, 10)
        client.delete(keys.stream_lease(NAME))
    else:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert client.get(keys.stream_lease(NAME)) is None, "lease released"
    return kind


async def until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


THREADS: list[int] = []


def test_fifty_stream_lifetimes_leave_no_connection_fd_or_thread_behind(
    make_settings: Callable[..., Settings], redis_client: redis.Redis
) -> None:
    settings = make_settings(
        archive=True,  # its writer thread is one of the stream's, counted below
        mock_tick_interval_seconds=0.05,
        lease_ttl_seconds=1.0,
        lease_renew_seconds=0.2,
        feed="mock",
    )
    seed(settings, redis_client)
    kinds = ["stop", "stolen", "raising", "cancelled"]

    async def main() -> list[str]:
        await asyncio.sleep(0)  # the loop's own resources exist before the baseline
        fds = open_fds()
        THREADS[:] = [threading.active_count()]
        ended = []
        for n in range(CYCLES):
            ended.append(await one_cycle(kinds[n % 4], settings, redis_client))
            await until(lambda: stream_connections(redis_client) == 0, 5)
            assert open_fds() == fds, f"cycle {n} ({kinds[n % 4]}) leaked descriptors"
            assert threading.active_count() == THREADS[0]
        return ended

    ended = asyncio.run(main())
    assert ended.count("stop") == ended.count("stolen") == 13
    assert ended.count("failed") == ended.count("cancelled") == 12
    wait_until(lambda: stream_connections(redis_client) == 0, 5)
