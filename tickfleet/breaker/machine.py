"""The breaker's rules: pure logic over an injected clock, with no I/O, threads or locks.

One worker's CLOSED -> OPEN -> HALF_OPEN -> CLOSED with its rolling failure window and its
half-open probes, plus what the fleet must hear (an outbox of outcomes, a claim for each
transition the worker made on its own) and how the store's answer is merged. Keeping the
rules apart from Redis lets unit tests drive every transition with a ``ManualClock`` and
makes the shared and the local breaker obey exactly the same rules.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from tickfleet.breaker.state import BreakerConfig, CircuitState, Source, Transition
from tickfleet.runtime.clock import Clock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

Failure = tuple[float, int]
"""One failure to report: its wall time and this worker's sequence number for it."""


# --- what a worker tells the fleet's store, and what the store answers ------------------------


@dataclass(frozen=True, slots=True)
class StoreView:
    """The fleet's breaker as the store holds it; ``state`` is only ever OPEN or CLOSED.

    The store never records HALF_OPEN: every worker derives it from ``opened_at`` and the
    recovery timeout, so no write is needed (and none can race) when recovery is due.
    """

    state: CircuitState
    version: int
    opened_at: float | None
    changed_at: float
    failures: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A transition this worker made on its own that the store has not confirmed yet.

    ``base`` is the store version the worker had seen when it decided: the store applies the
    claim only if nothing happened since, except that an open claim newer than the store's
    last change also wins over a closed store (a trip made while the store was unreachable).
    The sync script applies the same rule inside Redis.
    """

    base: int
    state: CircuitState
    at: float
    opened_at: float | None

    def wins_over(self, view: StoreView) -> bool:
        """True when this open claim, made after the store's last change, reopens a closed store."""
        return self.state is OPEN and view.state is CLOSED and self.at > view.changed_at


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one sync round writes: the pending claim and the outcomes since the last."""

    claim: Claim | None
    failures: tuple[Failure, ...]
    successes: int
    last_success_at: float | None = None  # wall time: the store drops failures before it


# --- the parts of one worker's state ------------------------------------------------------------


class _FailureWindow:
    """Monotonic times of the newest failures since the last success, at most ``threshold``.

    Keeping only the newest ``threshold`` is enough to decide a trip (the threshold-th
    newest failure is inside the window or it is not) and bounds memory in a failure storm.
    A success ends the outage its failures belonged to: two short outages a minute apart
    (a cluster shard failing over twice, each over in seconds) never add up to a trip.
    """

    def __init__(self, threshold: int, seconds: float) -> None:
        self._times: deque[float] = deque(maxlen=threshold)
        self._seconds = seconds

    def add(self, now: float) -> int:
        """Record a failure at ``now``; return how many failures the window now holds."""
        self._times.append(now)
        return self.count(now)

    def count(self, now: float) -> int:
        oldest = now - self._seconds
        while self._times and self._times[0] <= oldest:
            self._times.popleft()
        return len(self._times)

    def clear(self) -> None:
        self._times.clear()


class _Outbox:
    """Outcomes recorded on the hot path, waiting for the next sync round.

    Only the newest ``cap`` failures are kept: more than a threshold's worth trips the fleet
    anyway, so older ones cannot change a decision. The sequence number makes every failure
    a distinct member of the store's window, so a report that is retried after a lost reply
    cannot count a failure twice. A success drops the failures before it, here and (through
    ``last_success_at``) in the store's window.
    """

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._failures: deque[Failure] = deque(maxlen=cap)
        self._successes = 0
        self._sequence = 0
        self._last_success_at: float | None = None

    def success(self, at: float) -> None:
        self._successes += 1
        if self._failures:
            self._failures.clear()
        self._last_success_at = at

    def failure(self, at: float) -> None:
        self._sequence += 1
        self._failures.append((at, self._sequence))

    def drain(self) -> tuple[tuple[Failure, ...], int, float | None]:
        failures, successes = tuple(self._failures), self._successes
        last_success_at, self._last_success_at = self._last_success_at, None
        self._failures.clear()
        self._successes = 0
        return failures, successes, last_success_at

    def restore(self, report: Report) -> None:
        """Put back what a round could not write. Its failures go out again unless a
        success came since, which ended their outage."""
        ended = self._last_success_at is not None
        older = () if ended else report.failures
        if not ended:
            self._last_success_at = report.last_success_at
        self._failures = deque(sorted((*older, *self._failures)), maxlen=self._cap)
        self._successes += report.successes


class _ProbeGate:
    """Hands out the probes this worker may let through while half-open.

    Deciding alone, the worker owns the whole budget of ``max_attempts``. In step with the
    fleet it holds at most one permit at a time, reserved from the fleet-wide budget by a
    sync round, and the permit lapses a little before its reservation in the store does,
    so it can never be used once another worker could have taken its place.
    """

    def __init__(self, max_attempts: int, ttl: float) -> None:
        self._max = max_attempts
        self._ttl = ttl
        self._permits = 0
        self._until = 0.0
        self._issued = 0
        self._out_until = 0.0
        self.wanted = False

    def reset(self) -> None:
        self._permits = self._issued = 0
        self._until = self._out_until = 0.0
        self.wanted = False

    def own_budget(self) -> None:
        """Deciding alone: what is left of the whole budget in this half-open period."""
        self._permits = max(0, self._max - self._issued)
        self._until = math.inf

    def drop_budget(self) -> None:
        """Back in step with the fleet: only reserved permits count from now on."""
        self._permits = 0

    def take(self, now: float) -> bool:
        if self._permits > 0 and now < self._until:
            self._permits -= 1
            self._issued += 1
            self._out_until = now + self._ttl
            return True
        return False

    def needs_reservation(self, now: float) -> bool:
        """Someone asked for a probe, none is held, and no probe of ours is still out."""
        holding = self._permits > 0 and now < self._until
        return self.wanted and not holding and now >= self._out_until

    def grant(self, reserved_at: float) -> None:
        self._permits = 1
        self._until = reserved_at + self._ttl * 0.9
        self.wanted = False


def _same_instant(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < 1e-3


# --- the rules ------------------------------------------------------------------------------------


class BreakerMachine:
    """CLOSED -> OPEN -> HALF_OPEN -> CLOSED for one worker, plus what the fleet must hear.

    ``version`` is the last store version this worker has seen; local decisions never bump
    it, they leave a ``claim`` for the next sync round to push. Every machine keeps its
    outbox and claim (both bounded); only a shared breaker ever drains them. ``transitions``
    and ``wake_requested`` are left for the owner to act on after each call; ``closed`` is
    the one attribute the hot path reads.
    """

    def __init__(self, config: BreakerConfig, clock: Clock, source: Source = "local") -> None:
        self.config = config
        self._clock = clock
        self.state = CLOSED
        self.closed = True
        self.source: Source = source
        self.version = 0
        self.opened_at: float | None = None
        self.reopen_at = 0.0
        self.fleet_failures = 0
        self.claim: Claim | None = None
        self.last_error: BaseException | None = None
        self.transitions: deque[Transition] = deque()
        self.wake_requested = False
        self._window = _FailureWindow(config.failure_threshold, config.window_seconds)
        self._outbox = _Outbox(config.failure_threshold)
        self._probes = _ProbeGate(config.half_open_max_attempts, config.probe_reservation_ttl)

    # --- the hot path ---------------------------------------------------------------------

    def allow(self) -> bool:
        now = self._clock.monotonic()
        if self.state is OPEN:
            if now < self.reopen_at:
                return False
            self._half_open()
        if self.state is HALF_OPEN:
            return self._take_probe(now)
        return True

    def succeeded(self) -> None:
        self._outbox.success(self._clock.time())
        if self.state is HALF_OPEN:
            self._close(claim=True)
        elif self.state is CLOSED:
            self._window.clear()
            self.fleet_failures = 0  # the store drops them too, at the next round

    def failed(self, exc: BaseException | None) -> None:
        if exc is not None:
            self.last_error = exc
        self._outbox.failure(self._clock.time())
        if self._trips_on_failure():
            self._open(self._clock.time(), claim=True)

    def _trips_on_failure(self) -> bool:
        # A failed probe reopens at once; while closed, a full window trips.
        if self.state is HALF_OPEN:
            return True
        if self.state is not CLOSED:
            return False
        return self._window.add(self._clock.monotonic()) >= self.config.failure_threshold

    def failure_count(self) -> int:
        return max(self._window.count(self._clock.monotonic()), self.fleet_failures)

    def tick(self) -> None:
        """Move to HALF_OPEN when recovery is due, even if no caller asks for a while."""
        if self.state is OPEN and self._clock.monotonic() >= self.reopen_at:
            self._half_open()

    # --- keeping in step with the fleet ---------------------------------------------------

    def take_report(self) -> Report:
        failures, successes, last_success_at = self._outbox.drain()
        return Report(self.claim, failures, successes, last_success_at)

    def restore(self, report: Report) -> None:
        """A round that may not have reached the store: its outcomes go out with the next."""
        self._outbox.restore(report)

    def set_source(self, source: Source) -> bool:
        """Switch between deciding alone and following the fleet; True if it changed."""
        if source == self.source:
            return False
        self.source = source
        if self.state is HALF_OPEN:
            if source == "local":
                self._probes.own_budget()
            else:
                self._probes.drop_budget()
        return True

    def adopt(self, view: StoreView) -> None:
        """Merge the store's answer: a newer fleet transition wins over local state."""
        if view.version < self.version:
            self._store_was_reset(view)
        if view.version == self.version:
            self._same_version(view)
        else:
            self._newer_version(view)
        self.fleet_failures = view.failures

    def needs_probe(self) -> bool:
        return (
            self.state is HALF_OPEN
            and self.source == "shared"
            and self._probes.needs_reservation(self._clock.monotonic())
        )

    def grant_probe(self, version: int, reserved_at: float) -> None:
        """A fleet-wide permit was reserved at monotonic ``reserved_at`` for ``version``."""
        if self.state is HALF_OPEN and self.source == "shared" and version == self.version:
            self._probes.grant(reserved_at)

    # --- transitions -----------------------------------------------------------------------

    def _take_probe(self, now: float) -> bool:
        if self._probes.take(now):
            return True
        if not self._probes.wanted:
            self._probes.wanted = True
            self.wake_requested = True
        return False

    def _open(self, opened_at: float, claim: bool) -> None:
        elapsed = max(0.0, self._clock.time() - opened_at)
        self.opened_at = opened_at
        self.reopen_at = self._clock.monotonic() + max(0.0, self.config.recovery_timeout - elapsed)
        self._probes.reset()
        if claim:
            self.claim = Claim(self.version, OPEN, opened_at, opened_at)
        self._move(OPEN)

    def _close(self, claim: bool) -> None:
        self.opened_at = None
        self.last_error = None
        self.fleet_failures = 0
        self._window.clear()
        self._probes.reset()
        if claim:
            self.claim = Claim(self.version, CLOSED, self._clock.time(), None)
        self._move(CLOSED)

    def _half_open(self) -> None:
        self._probes.reset()
        if self.source == "local":
            self._probes.own_budget()
        self._move(HALF_OPEN)

    def _move(self, new: CircuitState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        self.closed = new is CLOSED
        self.transitions.append(Transition(old, new, self.source, self.version))
        self.wake_requested = True

    # --- merging the store's view ----------------------------------------------------------

    def _store_was_reset(self, view: StoreView) -> None:
        # The store lost its state (restart, flush): start over from its version and push a
        # local open again, since nobody else may remember it.
        self.version = view.version
        if not self.closed and self.claim is None and self.opened_at is not None:
            self.claim = Claim(view.version, OPEN, self.opened_at, self.opened_at)
            self.wake_requested = True

    def _same_version(self, view: StoreView) -> None:
        if self.claim is None:
            self._follow(view)
        elif self.claim.state is CLOSED and view.state is CLOSED:
            self.claim = None

    def _newer_version(self, view: StoreView) -> None:
        self.version = view.version
        if self.claim is not None and self.claim.wins_over(view):
            self.claim = Claim(view.version, OPEN, self.claim.at, self.claim.opened_at)
            self.wake_requested = True
            return
        self.claim = None
        self._follow(view)

    def _follow(self, view: StoreView) -> None:
        if view.state is CLOSED:
            if not self.closed:
                self._close(claim=False)
        elif self.closed or not _same_instant(self.opened_at, view.opened_at):
            self._open(view.opened_at or self._clock.time(), claim=False)
