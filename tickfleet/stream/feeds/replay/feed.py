"""The replay ``Feed``: a recorded day's ticks of the stream's tokens, published again.

Each tick goes out on the channel it was recorded on, in recorded order, its payload the
recorded bytes with ``"is_replay":true`` spliced before the closing brace (no parse, no
new serialisation; spliced in Arrow as a row group is decoded, not a tick at a time: the
unpaced replay runs at the publisher's pace, ``bench/replay.py``).
An account stream replays the options assigned to it, the underlying stream its index.

The day is read a window of recorded time ahead (``WINDOW_SECONDS``, in a thread), so the
disk never holds up a due tick; each row group of the archive is decoded once, and a
stream holds the row groups the current window overlaps, not the day (``Reader``).
Paced, a tick is waited for asleep until a millisecond before it is due, then by yielding
to the loop (``Pacer``'s spin): a timer's wake-up is late by about that much. Unpaced, the
feed waits on the publisher's backlog instead of the clock: a replay never drops a tick
to go faster.

Without a recorded day to replay the stream streams nothing, and says so in /health: a
trader who asked for a replay must not be shown simulated prices instead. A token added
mid-replay joins from the next window read (within two windows of recorded time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from tickfleet.archive.replay_source import Key, Reader, RecordedDay, Rows, latest_session
from tickfleet.assignment.plan import Assignment
from tickfleet.runtime.clock import Clock
from tickfleet.stream.feeds.replay.pacing import NS, Pacer, Sleep
from tickfleet.stream.feeds.replay.position import (
    REFRESH_SECONDS,
    Position,
    read_positions,
    run_of,
)
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.status import EXCLUDED_NOT_RECORDED, StreamStatus

log = logging.getLogger("tickfleet.stream")

WINDOW_SECONDS = 5.0  # recorded time read at once
STEP_MAX = 2000  # ticks offered between two yields to the publisher
BACKLOG_MAX = 5000  # unpaced: ticks waiting to be sent before the feed waits (10 batches)
SPIN_SECONDS = 0.001  # paced: the end of a wait spent yielding, not asleep (``Pacer``)
PAUSE_SECONDS = 0.05  # the lease is uncertain, or the publisher is behind
RETRY_SECONDS = 10.0  # no recorded day yet: look again
REPLAYED = b',"is_replay":true}'


@dataclass(frozen=True, slots=True)
class ReplaySpec:
    """What to replay: the archive, the day (None: the latest recorded session), the speed
    and the market-time window (None: from the first tick, to the last)."""

    root: Path
    date: dt.date | None
    speed: float
    start: dt.time | None
    end: dt.time | None
    tz: ZoneInfo

    def window_ns(self, date: dt.date) -> tuple[int | None, int | None]:
        return self._ns(date, self.start), self._ns(date, self.end)

    def _ns(self, date: dt.date, at: dt.time | None) -> int | None:
        if at is None:
            return None
        moment = dt.datetime.combine(date, at, tzinfo=self.tz)
        return round(moment.timestamp() * 1_000_000) * 1000


@dataclass(frozen=True, slots=True)
class Tokens:
    """Which ticks a stream replays: of ``kind``, the tokens an assignment gives
    ``account_id``, or the ``fixed`` ones (the underlying stream's index)."""

    kind: str  # "options" or "underlying"
    account_id: str | None = None
    fixed: frozenset[int] = frozenset()

    def of(self, assignment: Assignment | None) -> set[int]:
        if self.account_id is None:
            return set(self.fixed)
        return set(assignment.tokens_for(self.account_id)) if assignment else set()


class ReplayFeed:
    """The ``Feed`` of a stream replaying a recorded day (``TICKFLEET_FEED=replay``)."""

    def __init__(
        self,
        spec: ReplaySpec,
        tokens: Tokens,
        outlets: Mapping[str, Outlet],  # the stream's underlyings', by name
        client: aioredis.Redis | RedisCluster,  # the publish Redis: where positions lie
        status: StreamStatus,
        clock: Clock,
        may_publish: Callable[[], bool],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._spec = spec
        self._which = tokens
        self._outlets = outlets
        self._client = client
        self._status = status
        self._clock = clock
        self._may_publish = may_publish
        self._sleep = sleep
        self._pacer = Pacer(spec.speed, clock, sleep, SPIN_SECONDS)
        self.tokens = tokens.of(None)
        self.excluded: dict[int, str] = {}  # assigned, never recorded that day
        self._recorded: set[int] | None = None
        self._run = ""
        self._last: Key | None = None  # the last tick offered, of any underlying
        self._noted_at = 0.0
        # An account's replay starts once it knows its tokens: a window read before would
        # hold none of their ticks. The index needs no assignment.
        self._assigned = asyncio.Event()
        if tokens.account_id is None:
            self._assigned.set()

    # --- the Feed seam ----------------------------------------------------------------

    async def apply(self, assignment: Assignment) -> None:
        if self._which.account_id is None:
            return  # the index is replayed whatever the assignment
        wanted = self._which.of(assignment)
        self._assigned.set()
        removed = self.tokens - wanted
        self.tokens = wanted
        if removed:
            self._retract(removed)
        self._exclude_unrecorded()
        self._status.tokens = len(wanted)

    def forget(self, tokens: Collection[int]) -> None:
        gone = self.tokens & set(tokens)
        self.tokens -= gone
        if gone:
            self._retract(gone)
        self._exclude_unrecorded()
        self._status.tokens = len(self.tokens)

    async def run(self) -> None:
        status = self._status
        status.replay_speed = self._spec.speed
        try:
            await self._assigned.wait()
            day = await self._day()
            start_ns, end_ns = self._spec.window_ns(day.date)
            self._run = run_of(day.date.isoformat(), start_ns, end_ns)
            await self._play(day, start_ns, end_ns)
            status.replay_finished_at = self._clock.time()
            log.info("stream %s: replay of %s finished", status.stream, day.date)
            while True:  # keep the position true: a new owner then finds the replay done
                await self._sleep(REFRESH_SECONDS)
                self._refresh()
        finally:
            status.replay_date = status.replay_speed = status.replay_finished_at = None

    # --- the day ------------------------------------------------------------------------

    async def _day(self) -> RecordedDay:
        """The recorded day to replay, once it is there (until then /health says why)."""
        status = self._status
        while True:
            day, missing = await asyncio.to_thread(self._open)
            if day is not None:
                status.unavailable = None
                status.replay_date = day.date.isoformat()
                return day
            if status.unavailable != missing:
                log.warning("stream %s: %s", status.stream, missing)
            status.unavailable = missing
            await self._sleep(RETRY_SECONDS)

    def _open(self) -> tuple[RecordedDay | None, str]:
        """The day and its recorded tokens, or why there is nothing to replay (a thread)."""
        spec, names = self._spec, list(self._outlets)
        date = spec.date or latest_session(spec.root, names)
        if date is None:
            return None, f"replay: no recorded session of {', '.join(names)} in {spec.root}"
        self._status.replay_date = date.isoformat()
        day = RecordedDay.open(spec.root, date, names)
        if not day.parts:
            return None, f"replay: no ticks of {', '.join(names)} recorded on {date} in {spec.root}"
        self._recorded = day.tokens(self._which.kind)
        self._exclude_unrecorded()
        return day, ""

    def _exclude_unrecorded(self) -> None:
        if self._recorded is None:
            return
        self.excluded.clear()  # in place: the stream's status holds this very dict
        missing = self.tokens - self._recorded
        self.excluded.update(dict.fromkeys(missing, EXCLUDED_NOT_RECORDED))

    # --- playing --------------------------------------------------------------------------

    async def _play(self, day: RecordedDay, start_ns: int | None, end_ns: int | None) -> None:
        done = await read_positions(
            self._client,
            {u: o.channels.replay_position for u, o in self._outlets.items()},
            self._status.stream,
            self._run,
            self._clock.time(),
        )
        cursor = min((k[0] for k in done.values()), default=start_ns or day.first_ns or 0)
        if done:
            log.info("stream %s: replay resumes after %s", self._status.stream, done)
            self._last = max(done.values())
        anchored = False
        reader = day.reader(self._which.kind, REPLAYED)
        pending = self._read_ahead(day, reader, cursor, end_ns)
        while pending is not None:
            rows, hi = await pending
            pending = self._read_ahead(day, reader, hi, end_ns)
            if done:
                rows = _after(rows, done)
                done = {u: k for u, k in done.items() if k[0] >= hi}
            if not rows.ts_ns:
                continue
            if not anchored:
                if pending is not None:  # decoded before the clock starts, not during
                    await asyncio.wait({pending})
                self._pacer.anchor(rows.ts_ns[0])
                anchored = True
            await self._publish(rows)

    def _read_ahead(
        self, day: RecordedDay, reader: Reader, after_ns: int, end_ns: int | None
    ) -> asyncio.Task[tuple[Rows, int]] | None:
        """The next window's rows, read in a thread meanwhile; None at the end."""
        lo = day.next_start(after_ns)
        if lo is None or (end_ns is not None and lo >= end_ns):
            return None
        hi = lo + int(WINDOW_SECONDS * NS)
        hi = min(hi, end_ns) if end_ns is not None else hi
        tokens = frozenset(self.tokens)

        def read() -> tuple[Rows, int]:
            return reader.rows(lo, hi, tokens), hi

        return asyncio.ensure_future(asyncio.to_thread(read))

    async def _publish(self, rows: Rows) -> None:
        """Offer ``rows`` as they fall due (unpaced: as fast as the publisher sends)."""
        pacer, ts, n, i = self._pacer, rows.ts_ns, len(rows.ts_ns), 0
        while i < n:
            if not self._may_publish():  # the lease is not certainly ours: hold, then resume
                await self._sleep(PAUSE_SECONDS)
                pacer.anchor(ts[i])
                continue
            j = pacer.released(ts, i, min(n, i + STEP_MAX))
            if j == i:
                await pacer.wait(ts[i], REFRESH_SECONDS)
                self._refresh()
                continue
            self._offer(rows, i, j)
            i = j
            await self._sleep(0)  # the publisher's turn
            if pacer.unpaced:
                while any(o.backlog > BACKLOG_MAX for o in self._outlets.values()):
                    await self._sleep(PAUSE_SECONDS / 50)

    def _offer(self, rows: Rows, i: int, j: int) -> None:
        """Rows ``i:j`` of the stream's tokens to their channels, then the position."""
        tokens, outlets, kind = self.tokens, self._outlets, self._which.kind
        token, payload, underlying = rows.token, rows.payload, rows.underlying
        last: dict[str, int] = {}
        for k in range(i, j):
            t = token[k]
            if t not in tokens:
                continue
            name = underlying[k]
            if kind == "options":
                outlets[name].publish_option(t, payload[k])  # spliced as read: REPLAYED
            else:
                outlets[name].publish_index(name, payload[k])
            last[name] = k
        now = self._clock.time()
        for name, k in last.items():
            self._note(name, rows.key(k), now)
        self._last = rows.key(j - 1)
        if last:
            self._status.last_tick_at = now

    def _note(self, underlying: str, key: Key, now: float) -> None:
        outlet = self._outlets[underlying]
        position = Position(self._run, key, now)
        outlet.note(outlet.channels.replay_position, self._status.stream, position.encode())
        self._noted_at = now

    def _refresh(self) -> None:
        """Every underlying's position is the last tick offered, written again when it is
        about to go stale (long gaps in a recording, a finished replay)."""
        now = self._clock.time()
        if self._last is None or now - self._noted_at < REFRESH_SECONDS:
            return
        for name in self._outlets:
            self._note(name, self._last, now)

    def _retract(self, tokens: set[int]) -> None:
        if self._which.kind == "options":
            for outlet in self._outlets.values():
                outlet.retract_options(tokens)


def _after(rows: Rows, done: Mapping[str, Key]) -> Rows:
    """``rows`` without those at or before their underlying's position."""
    keep = [
        i for i, name in enumerate(rows.underlying) if name not in done or rows.key(i) > done[name]
    ]
    return Rows._make([column[i] for i in keep] for column in rows)
