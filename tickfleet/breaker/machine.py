"""The breaker's rules: pure logic over an injected clock, without locks, threads or I/O.

Callers serialise every call (``BreakerCore`` holds its lock around each). Keeping the rules
apart from threads and Redis lets unit tests drive every transition with a ``ManualClock``
and makes the shared and the local breaker obey exactly the same rules.
"""

from __future__ import annotations

from collections import deque

from tickfleet.breaker.config import BreakerConfig
from tickfleet.breaker.outbox import Outbox
from tickfleet.breaker.probes import ProbeGate
from tickfleet.breaker.report import Claim, Report, StoreView, claim_wins
from tickfleet.breaker.state import CircuitState, Source, Transition
from tickfleet.breaker.window import FailureWindow
from tickfleet.clock import Clock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN


def _same_instant(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) < 1e-3


class BreakerMachine:
    """CLOSED -> OPEN -> HALF_OPEN -> CLOSED for one worker, plus what the fleet must hear.

    ``version`` is the last store version this worker has seen; local decisions never bump
    it, they leave a ``claim`` for the sync thread to push. ``transitions`` and
    ``wake_requested`` are left for the caller to act on outside its lock. ``closed``,
    ``state`` and ``reopen_at`` (monotonic) may be read without the lock.
    """

    def __init__(
        self, config: BreakerConfig, clock: Clock, source: Source = "local", reporting: bool = False
    ) -> None:
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
        self._reporting = reporting
        self._window = FailureWindow(config.failure_threshold, config.window_seconds)
        self._outbox = Outbox(config.failure_threshold)
        self._probes = ProbeGate(config.half_open_max_attempts, config.probe_reservation_ttl)

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
        if self._reporting:
            self._outbox.success()
        if self.state is HALF_OPEN:
            self._close(claim=True)

    def failed(self, exc: BaseException | None) -> None:
        if exc is not None:
            self.last_error = exc
        if self._reporting:
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
        failures, successes = self._outbox.drain()
        return Report(self.claim, failures, successes)

    def restore(self, report: Report) -> None:
        self._outbox.restore(report.failures, report.successes)

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

    # --- transitions ---------------------------------------------------------------------------

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
            self._claim(OPEN, opened_at)
        self._move(OPEN)

    def _close(self, claim: bool) -> None:
        self.opened_at = None
        self.last_error = None
        self.fleet_failures = 0
        self._window.clear()
        self._probes.reset()
        if claim:
            self._claim(CLOSED, self._clock.time())
        self._move(CLOSED)

    def _half_open(self) -> None:
        self._probes.reset()
        if self.source == "local":
            self._probes.own_budget()
        self._move(HALF_OPEN)

    def _claim(self, state: CircuitState, at: float) -> None:
        if self._reporting:
            self.claim = Claim(self.version, state, at, self.opened_at)

    def _move(self, new: CircuitState) -> None:
        old = self.state
        if old is new:
            return
        self.state = new
        self.closed = new is CLOSED
        self.transitions.append(Transition(old, new, self.source, self.version))
        self.wake_requested = True

    # --- merging ---------------------------------------------------------------------------

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
        if self.claim is not None and claim_wins(self.claim, view):
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
