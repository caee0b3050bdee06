"""Two beats never double-fire, and a dead or stopped leader is replaced mid-period.

Real processes against a private redis-server: two or three ``celery beat`` with the
fleet's scheduler (RedBeat, configured by ``celeryconfig``) and a schedule of one entry
every ``PERIOD`` seconds, and a worker running what they send (``slot_app``). Every send
is recorded with the sending beat's pid and time, every run with its task id.

No double-fire means consecutive sends, from whichever beat, are at least a period apart;
a leader change mid-period must neither fire early (the new leader reads the last run
from Redis) nor leave a gap longer than the lock timeout plus a period. A Redis that
restarts empty takes the lock and the schedule with it: the beats must live through it
and one of them carry on alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise

import pytest
import redis

import celeryconfig
from tests.conftest import Fleet
from tests.integration.beat.slot_app import PERIOD_ENV, READY_KEY, RUNS_KEY, SENDS_KEY
from tests.support.polling import wait_until
from tests.support.redis_server import RedisServer
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(120)

PERIOD = 1.5
OUTAGE = 3.0
EARLY = 0.1  # a send this much before a period has passed is a double-fire
LATE = 0.6  # a beat wakes at the due time; allow this much for ticks and a busy machine
TAKEOVER = celeryconfig.redbeat_lock_timeout + celeryconfig.beat_max_loop_interval
# A warm stop releases the lock before the stopped beat exits; the standby takes it at its
# next poll, up to a loop interval later, and sends what is due from then on.
POLL = celeryconfig.beat_max_loop_interval


@dataclass(frozen=True, slots=True)
class Send:
    pid: int
    at: float
    task_id: str


def entries(client: redis.Redis, key: str) -> list[str]:
    return [raw.decode() if isinstance(raw, bytes) else raw for raw in client.lrange(key, 0, -1)]


def sends(client: redis.Redis) -> list[Send]:
    found = []
    for entry in entries(client, SENDS_KEY):
        pid, at, task_id = entry.split()
        found.append(Send(int(pid), float(at), task_id))
    return found


def gaps(found: list[Send]) -> list[float]:
    return [later.at - earlier.at for earlier, later in pairwise(found)]


class Beats:
    """The test's view of the sends: wait for more of them, tell who is sending."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def wait_for(self, count: int, timeout: float, pid: int | None = None) -> list[Send]:
        def enough() -> bool:
            mine = [s for s in sends(self.client) if pid is None or s.pid == pid]
            return len(mine) >= count

        wait_until(enough, timeout, every=0.05, what=f"{count} sends from {pid or 'any beat'}")
        return sends(self.client)

    def wait_mid_period(self) -> Send:
        """Sleep until half a period after the latest send, and return that send."""
        last = sends(self.client)[-1]
        time.sleep(max(0.0, last.at + PERIOD / 2 - time.time()))
        return last


def test_two_beats_fire_once_per_period_across_leader_changes(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_client: redis.Redis,
) -> None:
    fleet = fleet_factory(make_settings(), app="tests.integration.beat.slot_app")
    fleet.env[PERIOD_ENV] = str(PERIOD)
    fleet.control_worker(concurrency=1)
    first, second = fleet.beat(), fleet.beat()
    beats = Beats(redis_client)

    # Two beats for several periods: one of them sends, once a period.
    found = beats.wait_for(4, timeout=30)
    leader = first if found[0].pid == first.pid else second
    standby = second if leader is first else first
    assert {s.pid for s in found} == {leader.pid}

    # SIGKILL the leader mid-period: the standby takes over within the lock timeout.
    last = beats.wait_mid_period()
    leader.kill()
    found = beats.wait_for(3, timeout=TAKEOVER + PERIOD + 10, pid=standby.pid)
    taken = next(s for s in found if s.pid == standby.pid)
    killed_gap = taken.at - last.at
    assert PERIOD - EARLY <= killed_gap <= TAKEOVER + PERIOD + LATE

    # A restarted beat waits as the standby and sends nothing while the leader lives.
    restarted = fleet.beat()
    count = len(found)
    found = beats.wait_for(count + 3, timeout=3 * PERIOD + 10)
    assert {s.pid for s in found[count - 1 :]} == {standby.pid}

    # A warm stop mid-period releases the lock: the restarted beat continues the schedule
    # from the last run in Redis, neither early nor a period late.
    last = beats.wait_mid_period()
    standby.stop()
    released = time.time()
    found = beats.wait_for(2, timeout=PERIOD + 15, pid=restarted.pid)
    handed = next(s for s in found if s.pid == restarted.pid)
    # Bounded by the later of the next due time and one poll after the lock was released
    # (a busy machine can take a while to exit): a period late (a gap of two) is caught
    # whenever the stop took under 0.65 s.
    handover_bound = max(last.at + PERIOD, released + POLL) + LATE
    assert last.at + PERIOD - EARLY <= handed.at <= handover_bound, (
        f"handed over {handed.at - last.at:.2f} s after the last send, "
        f"stop took {released - last.at - PERIOD / 2:.2f} s"
    )

    beats.wait_for(len(found) + 1, timeout=PERIOD + 10)
    beats.wait_mid_period()  # a beat stopped between recording a send and sending it loses it
    restarted.stop()
    found = sends(redis_client)
    wait_until(lambda: redis_client.llen(RUNS_KEY) >= len(found), 10, what="every send run")

    all_gaps = gaps(found)
    assert min(all_gaps) >= PERIOD - EARLY, f"double-fire: gaps {all_gaps}"
    # The two leader changes' gaps are bounded above; every other gap is one period.
    changes = {taken.task_id, handed.task_id}
    steady = [b.at - a.at for a, b in pairwise(found) if b.task_id not in changes]
    assert max(steady) <= PERIOD + LATE, f"a period skipped: gaps {all_gaps}"
    runs = entries(redis_client, RUNS_KEY)
    assert sorted(runs) == sorted(s.task_id for s in found)
    print(
        f"{len(found)} sends, gaps {min(all_gaps):.3f}-{max(all_gaps):.3f} s; "
        f"SIGKILL takeover gap {killed_gap:.2f} s (bound {TAKEOVER + PERIOD + LATE:.1f} s), "
        f"warm handover gap {handed.at - last.at:.2f} s"
    )


def test_beats_live_through_redis_restarting_empty_and_one_carries_on(
    make_settings: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    redis_server: RedisServer,
    redis_client: redis.Redis,
) -> None:
    fleet = fleet_factory(make_settings(), app="tests.integration.beat.slot_app")
    fleet.env[PERIOD_ENV] = str(PERIOD)
    fleet.control_worker(concurrency=1)
    first, second = fleet.beat(), fleet.beat()
    beats = Beats(redis_client)
    beats.wait_for(2, timeout=30)
    # Both are up (a beat still building its scheduler when Redis goes needs Redis).
    wait_until(lambda: redis_client.llen(READY_KEY) == 2, 30, what="both schedulers built")

    try:
        redis_server.stop()
        time.sleep(OUTAGE)
    finally:
        redis_server.start()
    restarted_at = time.time()

    found = beats.wait_for(5, timeout=TAKEOVER + 5 * PERIOD + 15)
    resumed = found[0].at - restarted_at
    assert first.alive() and second.alive()
    assert resumed <= TAKEOVER + PERIOD + LATE
    all_gaps = gaps(found)
    assert min(all_gaps) >= PERIOD - EARLY, f"double-fire: gaps {all_gaps}"
    assert max(all_gaps) <= PERIOD + LATE, f"a period skipped: gaps {all_gaps}"
    assert len({s.pid for s in found}) == 1
    print(f"sending again {resumed:.2f} s after Redis restarted empty ({OUTAGE} s outage)")
