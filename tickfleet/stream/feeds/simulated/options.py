"""An account's simulated option feed: its assigned tokens, priced on every tick.

The token set follows the assignment incrementally: added tokens are looked up in the
catalog and added to the book, removed ones forgotten, and everything else keeps
ticking, so a change never restarts the stream or leaves a gap on unchanged tokens.

The book holds at most ``MOCK_STATE_MAX_SIZE`` contracts. When more are assigned, the
feed chooses which to hold (those it already holds, then the lowest tokens) and reports
every other one as excluded, with its reason (the stream's status shows the running
feed's), so ``/health``
names them; the moment room frees up (a token removed, a contract expired) the lowest
excluded tokens are taken in. The cap never silently stops an assigned token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Mapping

from tickfleet.assignment.plan import Assignment
from tickfleet.instruments import Instrument
from tickfleet.market.contracts import MockOptionSnapshot, option_contract
from tickfleet.market.options import MockOptionBook
from tickfleet.market.snapshot import RedisSnapshotStore
from tickfleet.stream.feeds.simulated.depth_json import LTP, ModeFields
from tickfleet.stream.feeds.simulated.pacing import Simulation, tick_forever
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.status import (
    EXCLUDED_EXPIRED,
    EXCLUDED_MOCK_CAP,
    EXCLUDED_NOT_SIMULATED,
    StreamStatus,
)
from tickfleet.subscriptions.store import Mode
from tickfleet.ticks.payloads import BookJson, OptionPayload, Stamp

log = logging.getLogger("tickfleet.stream")

RowLookup = Callable[[Collection[int]], Awaitable[Mapping[int, Instrument]]]


def option_tick(
    payload: OptionPayload,
    stamp: Stamp,
    s: MockOptionSnapshot,
    book: BookJson | None = None,
    total_buy_quantity: int | None = None,
    total_sell_quantity: int | None = None,
) -> bytes:
    """The published tick of one simulated option (its values as the book rounded them;
    its book's depth and totals as its mode carries them: ``ModeFields``)."""
    return payload.tick(
        stamp, s.last_price, s.volume, s.oi, s.iv, s.delta, s.gamma, s.theta, s.vega,
        s.version, True, None, None, total_buy_quantity, total_sell_quantity, book,
    )  # fmt: skip


class SimulatedOptions:
    """The ``Feed`` of an account stream outside market hours."""

    def __init__(
        self,
        account_id: str,
        book: MockOptionBook,
        cap: int,
        snapshots: RedisSnapshotStore,
        lookup: RowLookup,
        outlet: Outlet,
        status: StreamStatus,
        simulation: Simulation,
        may_tick: Callable[[], bool],
    ) -> None:
        self.account_id = account_id
        self.book = book
        self._cap = cap
        self._snapshots = snapshots
        self._lookup = lookup
        self._outlet = outlet
        self._status = status
        self._sim = simulation
        self._may_tick = may_tick
        self.tokens: set[int] = set()  # assigned to this account
        self.modes: dict[int, str] = {}  # their modes: a book for QUOTE and FULL
        self._books = False  # whether any of them wants one
        self._fields = ModeFields()
        self._row_modes: tuple[tuple[int, ...], list[str]] = ((), [])  # chain order
        self.excluded: dict[int, str] = {}  # assigned, not simulated, and why
        self._payloads: dict[int, OptionPayload] = {}  # of the tokens the book holds

    async def run(self) -> None:
        await tick_forever(self._sim.interval, self.tick, self._may_tick, self._status.stream)

    async def apply(self, assignment: Assignment) -> None:
        self._set_modes(assignment.tokens_for(self.account_id))
        wanted = set(self.modes)
        added, removed = wanted - self.tokens, self.tokens - wanted
        if removed:
            self._drop(removed)
        self.tokens = wanted
        await self._fill()
        self._status.tokens = len(wanted)
        if added or removed:
            log.info(
                "stream %s applied assignment v%d: +%d -%d tokens (%d total, %d held)",
                self._status.stream,
                assignment.version,
                len(added),
                len(removed),
                len(wanted),
                len(self.book),
            )

    def forget(self, tokens: Collection[int]) -> None:
        gone = set(tokens) & self.tokens
        self._drop(gone)
        self.tokens -= gone
        self._set_modes({t: m for t, m in self.modes.items() if t not in gone})
        self._status.tokens = len(self.tokens)

    def _set_modes(self, modes: dict[int, str]) -> None:
        self.modes = modes
        self._books = any(mode != LTP for mode in modes.values())
        self._row_modes = ((), [])  # in the chain's order again at the next tick

    async def tick(self) -> None:
        underlying = await self._snapshots.read()
        if underlying is None:
            return  # the underlying stream has not written a snapshot yet
        states = self.book.tick(underlying, self._sim.now(), self._sim.rng, depth=self._books)
        if states:
            self._publish(states)
        expired = self.book.take_expired()
        if expired:
            for token in expired:
                self._payloads.pop(token, None)
            self._exclude(expired, EXCLUDED_EXPIRED)
            await self._fill()

    def _publish(self, states: list[MockOptionSnapshot]) -> None:
        payloads, publish = self._payloads, self._outlet.publish_option
        stamp = Stamp.of(states[0].timestamp, self._sim.tz)  # one chain tick, one time
        chain, depth = self.book.last_chain, self.book.last_depth
        if depth is None or chain is None:
            for s in states:
                token = s.instrument_token
                publish(token, option_tick(payloads[token], stamp, s))
        else:
            fields = self._fields.columns(depth, self._modes_of(chain.tokens))
            for s, book, buy, sell in zip(states, *fields, strict=True):
                token = s.instrument_token
                publish(token, option_tick(payloads[token], stamp, s, book, buy, sell))
        if chain is not None:
            self._outlet.chain_bars(chain, True)
        self._status.last_tick_at = self._sim.clock.time()

    def _modes_of(self, tokens: tuple[int, ...]) -> list[str]:
        """The modes of a chain's tokens in its order (made again when the chain changes)."""
        known, modes = self._row_modes
        if known is not tokens or len(modes) != len(tokens):
            modes = [self.modes.get(t, Mode.FULL.value) for t in tokens]
            self._row_modes = (tokens, modes)
        return modes

    def _drop(self, tokens: Collection[int]) -> None:
        self.book.forget(tokens)
        for token in tokens:
            self.excluded.pop(token, None)
            self._payloads.pop(token, None)
        self._outlet.retract_options(tokens)

    def _exclude(self, tokens: Collection[int], reason: str) -> None:
        if not tokens:
            return
        self.excluded.update(dict.fromkeys(tokens, reason))
        self._outlet.retract_options(tokens)

    async def _fill(self) -> None:
        """Hold as many assigned tokens as the cap allows; report the rest as excluded."""
        excluded = self.excluded
        settled = {t for t, why in excluded.items() if why != EXCLUDED_MOCK_CAP}
        waiting = sorted(self.tokens - set(self.book.tokens) - settled)
        room = max(0, self._cap - len(self.book))
        taken = waiting[:room]
        if taken:
            rows = await self._lookup(taken)
            made = (option_contract(row, row.lot_size) for row in rows.values())
            contracts = [c for c in made if c is not None]
            self.book.ensure(contracts)
            simulated = {c.instrument_token for c in contracts}
            self._payloads.update((t, OptionPayload(rows[t])) for t in simulated)
            for token in taken:
                excluded.pop(token, None)
            self._exclude([t for t in taken if t not in simulated], EXCLUDED_NOT_SIMULATED)
        over = waiting[room:]
        newly = [t for t in over if excluded.get(t) != EXCLUDED_MOCK_CAP]
        if newly:
            self._exclude(newly, EXCLUDED_MOCK_CAP)
            log.warning(
                "stream %s: %d assigned tokens over MOCK_STATE_MAX_SIZE=%d are not "
                "simulated (see /health)",
                self._status.stream,
                len(over),
                self._cap,
            )
