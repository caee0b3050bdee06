"""A stream's recorder: every batch Redis took, written to the archive by a thread of its own.

The publisher hands each batch that reached Redis to ``record`` (``TickPublisher``'s tap),
which copies its payloads into one buffer (``pack``: a few C-level passes, no Python step
a tick) and appends it to a queue, so the tick path never waits on a disk. A thread
drains the queue every flush period (sooner past ``part_max_ticks``, and once more on a
clean stop), builds one Arrow table per market date and underlying, and writes each as a
part (``parts.write_part``: a temporary name, then a rename). A killed process loses what
waited in the queue: at most one flush period.

Recording at the publisher, not from a subscription, is what makes the archive whole: a
subscriber that loses its connection misses ticks, while every batch the publish script
accepted passes through here, in the order Redis published it (a batch publishes channel
by channel, in the order each channel first appears: ``batch_arguments``).

The queue is bounded (``queue_max_ticks``): a disk that is slower than the ticks, full or
failing costs archived ticks, counted by reason (``DROP_REASONS``), logged once per
change of reason and reported for ``/health`` (``report``); it never costs a published one.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple
from uuid import uuid4
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

from tickfleet.archive.layout import PART_SUFFIX, SCHEMA, partition_dir
from tickfleet.archive.parts import write_part
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock

log = logging.getLogger("tickfleet.archive")

PublishedTick = tuple[str, str, str, bytes, float]
"""A tick as the publisher's ``PendingTick`` holds it: channel, latest-tick hash, field
(the token, or the index's symbol), payload, creation time. An empty channel is a
retraction, never published: it is not recorded."""

Batch = Sequence[PublishedTick]

QUEUE_FULL = "queue_full"
DISK_FULL = "disk_full"
NOT_WRITABLE = "not_writable"
WRITE_ERROR = "write_error"
DROP_REASONS = (QUEUE_FULL, DISK_FULL, NOT_WRITABLE, WRITE_ERROR)

_channel, _field, _payload = itemgetter(0), itemgetter(2), itemgetter(3)
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_WRITABLE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}
USAGE_EVERY_SECONDS = 60.0  # walking the archive for its size costs more than statvfs
CLOSE_TIMEOUT_SECONDS = 30.0


def drop_reason(exc: BaseException) -> str:
    """What a failed part write means for the operator."""
    code = getattr(exc, "errno", None)
    if code in _DISK_FULL_ERRNOS:
        return DISK_FULL
    if code in _NOT_WRITABLE_ERRNOS:
        return NOT_WRITABLE
    return WRITE_ERROR


@dataclass(frozen=True, slots=True)
class Route:
    """Where one channel's ticks are filed: its underlying, its kind, and the token of
    its ticks when their field is not one (the index's, on the underlying channel)."""

    underlying: str
    kind: str  # "options" or "underlying"
    token: int | None = None


@dataclass(frozen=True, slots=True)
class RecorderConfig:
    root: Path
    flush_seconds: float = 60.0
    queue_max_ticks: int = 500_000
    part_max_ticks: int = 100_000
    timezone: str = "Asia/Kolkata"


@dataclass(slots=True)
class _Columns:
    """One part's rows, a run of one channel's ticks at a time: what a run shares (its
    time, first seq, channel, kind, source) is kept once; tokens and payloads per tick.

    The writer thread shares the GIL with the event loop: the columns are made by NumPy
    and Arrow from these lists (a Python object per tick only where the tick has one of
    its own), which cost a third of building every column from per-tick lists.
    """

    counts: list[int] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    channel: list[str] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    token: list[str] = field(default_factory=list)  # a tick's field, or its route's token
    payload: list[pa.Array] = field(default_factory=list)  # binary chunks
    rows: int = 0

    def add(
        self,
        payloads: pa.Array,
        fields: list[str],
        ts_ns: int,
        seq: int,
        channel: str,
        route: Route,
        source: str,
    ) -> int:
        """Append one channel's run of ticks; returns the next sequence number."""
        n = len(payloads)
        self.rows += n
        self.counts.append(n)
        self.ts_ns.append(ts_ns)
        self.seq.append(seq)
        self.channel.append(channel)
        self.kind.append(route.kind)
        self.source.append(source)
        self.token += fields if route.token is None else [str(route.token)] * n
        self.payload.append(payloads)
        return seq + n

    def table(self, stream: str) -> pa.Table:
        counts = np.asarray(self.counts, np.int64)
        n = int(counts.sum())
        before = np.cumsum(counts) - counts  # rows before each run
        seq = np.repeat(np.asarray(self.seq, np.int64) - before, counts) + np.arange(n)
        return pa.table(
            {
                "ts_ns": np.repeat(np.asarray(self.ts_ns, np.int64), counts),
                "stream": _repeated([stream], [n]),
                "seq": seq,
                "kind": _repeated(self.kind, counts),
                "channel": _repeated(self.channel, counts),
                "token": pa.array(self.token, pa.string()).cast(pa.int64()),
                "source": _repeated(self.source, counts),
                "payload": pa.concat_arrays(self.payload),
            }
        ).cast(SCHEMA)


def _repeated(values: Sequence[str], counts: Sequence[int] | np.ndarray) -> pa.Array:
    """Each run's value repeated over its rows, built as a dictionary array (no Python
    string per row)."""
    unique = list(dict.fromkeys(values))
    codes = np.asarray([unique.index(v) for v in values], np.int32)
    indices = pa.array(np.repeat(codes, counts), pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(unique, pa.string()))


class _MarketDay:
    """The market date of an instant, computed again only when a day boundary is crossed."""

    def __init__(self, tz: str) -> None:
        self._tz = ZoneInfo(tz)
        self._start = self._end = 0
        self._date = date.min

    def of(self, ts_ns: int) -> date:
        if not self._start <= ts_ns < self._end:
            day = datetime.fromtimestamp(ts_ns / 1e9, self._tz).date()
            midnight = datetime(day.year, day.month, day.day, tzinfo=self._tz)
            self._date = day
            self._start = int(midnight.timestamp() * 1e9)
            self._end = int((midnight + timedelta(days=1)).timestamp() * 1e9)
        return self._date


class _Packed(NamedTuple):
    """A batch as the recorder keeps it until it is written: its payloads copied into one
    buffer and its fields into one string, so that the publisher's tick objects are freed
    at once. Holding them for a flush period cost the event loop as much CPU as writing
    them (the allocator no longer reuses their memory while it is warm)."""

    n: int
    at: float
    source: str
    channels: str | list[str]  # the batch's one channel, or each tick's
    fields: str  # "\0"-joined
    payloads: bytes
    lengths: array[int]


def pack(batch: Batch, at: float, source: str) -> _Packed:
    """Four C-level passes over the batch, no Python code a tick."""
    payloads = list(map(_payload, batch))
    one = len(set(map(_channel, batch))) == 1
    channels = batch[0][0] if one else list(map(_channel, batch))
    return _Packed(
        len(batch), at, source, channels, "\0".join(map(_field, batch)), b"".join(payloads),
        array("I", map(len, payloads)),
    )  # fmt: skip


def unpack(packed: _Packed) -> list[tuple[str, pa.Array, list[str]]]:
    """Each channel's run of the batch, in the order Redis published it: channel by
    channel, each where it first appears, its ticks in their order (``batch_arguments``)."""
    n = packed.n
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.frombuffer(packed.lengths, np.uint32), out=offsets[1:])
    payloads = pa.Array.from_buffers(
        pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(packed.payloads)]
    )
    fields = packed.fields.split("\0")
    if isinstance(packed.channels, str):
        return [(packed.channels, payloads, fields)]
    codes = {c: i for i, c in enumerate(dict.fromkeys(packed.channels))}
    code_of = np.fromiter((codes[c] for c in packed.channels), np.int32, n)
    order = np.argsort(code_of, kind="stable")
    ordered, fields = payloads.take(pa.array(order)), [fields[i] for i in order]
    ends = np.cumsum(np.bincount(code_of, minlength=len(codes)))
    runs, start = [], 0
    for channel, end in zip(codes, ends.tolist(), strict=True):
        runs.append((channel, ordered.slice(start, end - start), fields[start:end]))
        start = end
    return runs


class TickRecorder:
    """Records one stream's published ticks into the archive (see the module's doc)."""

    def __init__(
        self,
        stream: str,
        routes: Mapping[str, Route],
        config: RecorderConfig,
        clock: Clock,
        metrics: Metrics,
        source: Callable[[], str],
    ) -> None:
        self.stream = stream
        self._routes = dict(routes)
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._source = source
        self._labels = {"stream": stream}
        self._queue: deque[_Packed] = deque()
        self._queued = 0  # ticks appended (the event loop's count)
        self._taken = 0  # ticks drained (the writer thread's count)
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._day = _MarketDay(config.timezone)
        self._slug = stream.replace(":", "_").replace("/", "_")
        self._run_id = uuid4().hex[:8]
        self._parts = 0
        self._seq = 0
        self._queue_full_seen = 0
        self._usage_at = float("-inf")
        self.written = 0
        self.dropped: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self.failing: str | None = None  # the reason of the last flush's losses, if any
        self.last_error: str | None = None
        self.free_bytes: int | None = None
        self.used_bytes: int | None = None
        self.last_write_at: float | None = None

    # --- the event loop's side ------------------------------------------------------------

    def record(self, batch: Batch) -> None:
        """Queue a batch Redis took: its bytes copied (``pack``, C-level passes), never a
        Python step a tick; never blocks, never raises for a full queue."""
        n = len(batch)
        if not n:
            return
        if self._queued - self._taken + n > self._config.queue_max_ticks:
            self._drop(QUEUE_FULL, n)
            return
        self._queue.append(pack(batch, self._clock.time(), self._source()))
        self._queued += n
        if self._queued - self._taken >= self._config.part_max_ticks:
            self._wake.set()

    def flush_soon(self) -> None:
        """Have the thread write what is queued now, not at the end of its period."""
        self._wake.set()

    @property
    def pending(self) -> int:
        return self._queued - self._taken

    def start(self) -> TickRecorder:
        self._thread = threading.Thread(
            target=self._run, name=f"archive {self.stream}", daemon=True
        )
        self._thread.start()
        return self

    def close(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Write what is queued and stop the thread (a clean stop loses nothing). Blocks:
        on an event loop, ``aclose``."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._still_writing(timeout)

    async def aclose(self, timeout: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """``close`` for an event loop: the loop waits without blocking and without a
        thread of its own (an executor's would outlive the stream)."""
        self._stopping = True
        self._wake.set()
        deadline = time.monotonic() + timeout
        while self._thread is not None and self._thread.is_alive():
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        self._still_writing(timeout)

    def _still_writing(self, timeout: float) -> None:
        if self._thread is not None and self._thread.is_alive():
            log.warning("archive of %s: still writing after %.0fs", self.stream, timeout)

    def report(self) -> dict[str, Any]:
        """What ``/health`` shows of this recorder (through the stream's status)."""
        return {
            "dir": str(self._config.root),
            "state": "failing" if self.failing else "ok",
            "failing": self.failing,
            "last_error": self.last_error,
            "written": self.written,
            "dropped": {r: n for r, n in self.dropped.items() if n},
            "queued": self.pending,
            "free_bytes": self.free_bytes,
            "used_bytes": self.used_bytes,
            "last_write_at": self.last_write_at,
        }

    # --- the writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self._config.flush_seconds)
            self._wake.clear()
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write every queued tick as parts; returns how many were written."""
        batches = []
        while self._queue:
            batches.append(self._queue.popleft())
        taken = sum(packed.n for packed in batches)
        self._taken += taken
        written, losses = 0, set()
        for (day, underlying), columns in self._columns(batches).items():
            try:
                self._write(day, underlying, columns)
            except OSError as exc:
                losses.add(self._failed(exc, columns.rows))
            else:
                written += columns.rows
        self.written += written
        if written:
            self._metrics.inc("archive_ticks_written_total", written, self._labels)
            self.last_write_at = self._clock.time()
        self._settle(losses)
        self._measure()
        return written

    def _columns(self, batches: list[_Packed]) -> dict[tuple[date, str], _Columns]:
        """Each (market date, underlying)'s rows, a channel's run of ticks at a time."""
        parts: dict[tuple[date, str], _Columns] = {}
        routes, day_of = self._routes, self._day.of
        for packed in batches:
            ts_ns = round(packed.at * 1e6) * 1000  # a float of epoch seconds holds microseconds
            day = day_of(ts_ns)
            for channel, payloads, fields in unpack(packed):
                route = routes.get(channel)
                if route is None:  # a retraction (""), or a channel this stream does not own
                    continue
                columns = parts.get((day, route.underlying))
                if columns is None:
                    columns = parts[(day, route.underlying)] = _Columns()
                self._seq = columns.add(
                    payloads, fields, ts_ns, self._seq, channel, route, packed.source
                )
        return parts

    def _write(self, day: date, underlying: str, columns: _Columns) -> None:
        self._parts += 1
        first = columns.ts_ns[0]
        name = f"p-{first:019d}-{self._slug}-{self._run_id}-{self._parts:06d}{PART_SUFFIX}"
        path = partition_dir(self._config.root, day, underlying) / name
        started = time.perf_counter()
        write_part(path, columns.table(self.stream))
        self._metrics.observe("archive_write_seconds", time.perf_counter() - started)
        self._metrics.inc("archive_parts_written_total", 1, self._labels)
        self._metrics.inc("archive_bytes_written_total", path.stat().st_size, self._labels)

    def _failed(self, exc: OSError, n: int) -> str:
        reason = drop_reason(exc)
        self._drop(reason, n)
        self.last_error = f"{type(exc).__name__}: {exc}"
        return reason

    def _drop(self, reason: str, n: int) -> None:
        """Count ticks the archive will not hold (both threads call it: the counters are
        the metrics buffer's, under its lock; ``dropped`` is informative)."""
        self.dropped[reason] += n
        self._metrics.inc("archive_dropped_total", n, {"reason": reason})

    def _settle(self, losses: set[str]) -> None:
        """Log a change of state once (not once a flush) and keep it for ``report``."""
        if self.dropped[QUEUE_FULL] > self._queue_full_seen:
            losses.add(QUEUE_FULL)
            self._queue_full_seen = self.dropped[QUEUE_FULL]
        failing = ",".join(sorted(losses)) or None
        if failing != self.failing:
            if failing:
                log.error(
                    "archive of %s at %s: ticks not archived (%s): %s; publishing goes on",
                    self.stream, self._config.root, failing, self.last_error or "writer behind",
                )  # fmt: skip
            else:
                log.info("archive of %s at %s: writing again", self.stream, self._config.root)
        self.failing = failing
        self._metrics.set_gauge("archive_queue_ticks", self.pending, self._labels)

    def _measure(self) -> None:
        """Free space every flush (statvfs is cheap); the archive's size once a minute."""
        root = self._config.root
        probe = root if root.exists() else _existing_parent(root)
        try:
            self.free_bytes = shutil.disk_usage(probe).free
            now = time.monotonic()
            if now - self._usage_at >= USAGE_EVERY_SECONDS:
                self._usage_at = now
                self.used_bytes = disk_use(root)
        except OSError as exc:
            log.debug("archive %s: usage not measured: %s", root, exc)
            return
        self._metrics.set_gauge("archive_disk_free_bytes", self.free_bytes, self._labels)
        if self.used_bytes is not None:
            self._metrics.set_gauge("archive_disk_used_bytes", self.used_bytes, self._labels)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def disk_use(root: Path) -> int:
    """Bytes the archive's files take (what ``du`` would count, roughly)."""
    total = 0
    for folder, _, files in os.walk(root):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except FileNotFoundError:  # compacted away meanwhile
                continue
    return total
