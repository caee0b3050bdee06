"""An account's simulated option feed: its assigned tokens, priced on every tick.

The token set follows the assignment incrementally: added tokens are looked up in the
catalog and added to the book, removed ones forgotten, and everything else keeps
ticking, so a change never restarts the stream or leaves a gap on unchanged tokens.

Each underlying has its own book, priced on its own index's snapshot and published on
its own channels (``Chain``): an account's connection carries the tokens of every
underlying, but a BANKNIFTY option is never priced off NIFTY's level.

The books hold at most ``MOCK_STATE_MAX_SIZE`` contracts together. When more are assigned, the
feed chooses which to hold (those it already holds, then the lowest tokens) and reports
every other one as excluded, with its reason (the stream's status shows the running
feed's), so ``/health``
names them; the moment room frees up (a token removed, a contract expired) the lowest
excluded tokens are taken in. The cap never silently stops an assigned token.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from typing import NamedTuple

from tickfleet.assignment.plan import Assignment
from tickfleet.instruments import Instrument
from tickfleet.market.contracts import MockOptionSnapshot, OptionContract, option_contract
from tickfleet.market.options import MockOptionBook
from tickfleet.market.snapshot import RedisSnapshotStore
from tickfleet.stream.feeds.simulated.depth_json import LTP, ModeFields
from tickfleet.stream.feeds.simulated.pacing import Simulation, tick_forever
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.status import (
    EXCLUDED_EXPIRED,
    EXCLUDED_MOCK_CAP,
    EXCLUDED_NOT_CONFIGURED,
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


class Chain(NamedTuple):
    """One underlying's part of an account's simulated feed."""

    book: MockOptionBook
    snapshots: RedisSnapshotStore  # the underlying's index, written by its stream
    outlet: Outlet  # bound to the underlying's channels


ChainFor = Callable[[str], "Chain | None"]  # None: the underlying is not configured


class SimulatedOptions:
    """The ``Feed`` of an account stream outside market hours."""

    def __init__(
        self,
        account_id: str,
        chain_for: ChainFor,
        cap: int,
        lookup: RowLookup,
        status: StreamStatus,
        simulation: Simulation,
        may_tick: Callable[[], bool],
    ) -> None:
        self.account_id = account_id
        self._chain_for = chain_for
        self.chains: dict[str, Chain] = {}  # by underlying, made when first needed
        self._cap = cap
        self._lookup = lookup
        self._status = status
        self._sim = simulation
        self._may_tick = may_tick
        self.tokens: set[int] = set()  # assigned to this account
        self.modes: dict[int, str] = {}  # their modes: a book for QUOTE and FULL
        self._books = False  # whether any of them wants one
        self._fields = ModeFields()
        self._row_modes: dict[str, tuple[tuple[int, ...], list[str]]] = {}  # chain order
        self.excluded: dict[int, str] = {}  # assigned, not simulated, and why
        self._payloads: dict[int, OptionPayload] = {}  # of the tokens the books hold
        self._underlying: dict[int, str] = {}  # of every token looked up

    async def run(self) -> None:
        await tick_forever(self._sim.interval, self.tick, self._may_tick, self._status.stream)

    @property
    def held(self) -> int:
        return sum(len(c.book) for c in self.chains.values())

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
                self.held,
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
        self._row_modes = {}  # in the chains' order again at the next tick

    async def tick(self) -> None:
        expired: list[int] = []
        for name, chain in self.chains.items():
            underlying = await chain.snapshots.read()
            if underlying is None:
                continue  # its underlying stream has not written a snapshot yet
            book = chain.book
            states = book.tick(underlying, self._sim.now(), self._sim.rng, depth=self._books)
            if states:
                self._publish(name, chain, states)
            expired += book.take_expired()
        if expired:
            for token in expired:
                self._payloads.pop(token, None)
            self._exclude(expired, EXCLUDED_EXPIRED)
            await self._fill()

    def _publish(self, name: str, chain: Chain, states: list[MockOptionSnapshot]) -> None:
        payloads, publish = self._payloads, chain.outlet.publish_option
        stamp = Stamp.of(states[0].timestamp, self._sim.tz)  # one chain tick, one time
        arrays, depth = chain.book.last_chain, chain.book.last_depth
        if depth is None or arrays is None:
            for s in states:
                token = s.instrument_token
                publish(token, option_tick(payloads[token], stamp, s))
        else:
            fields = self._fields.columns(depth, self._modes_of(name, arrays.tokens))
            for s, book, buy, sell in zip(states, *fields, strict=True):
                token = s.instrument_token
                publish(token, option_tick(payloads[token], stamp, s, book, buy, sell))
        if arrays is not None:
            chain.outlet.chain_bars(arrays, True)
        self._status.last_tick_at = self._sim.clock.time()

    def _modes_of(self, name: str, tokens: tuple[int, ...]) -> list[str]:
        """The modes of a chain's tokens in its order (made again when the chain changes)."""
        known, modes = self._row_modes.get(name, ((), []))
        if known is not tokens or len(modes) != len(tokens):
            modes = [self.modes.get(t, Mode.FULL.value) for t in tokens]
            self._row_modes[name] = (tokens, modes)
        return modes

    def _drop(self, tokens: Collection[int]) -> None:
        for chain, group in self._by_chain(tokens):
            chain.book.forget(group)
            chain.outlet.retract_options(group)
        for token in tokens:
            self.excluded.pop(token, None)
            self._payloads.pop(token, None)
            self._underlying.pop(token, None)

    def _exclude(self, tokens: Collection[int], reason: str) -> None:
        if not tokens:
            return
        self.excluded.update(dict.fromkeys(tokens, reason))
        for chain, group in self._by_chain(tokens):
            chain.outlet.retract_options(group)

    def _by_chain(self, tokens: Iterable[int]) -> list[tuple[Chain, list[int]]]:
        """``tokens`` grouped by the chain of their underlying (unknown ones left out)."""
        groups: dict[str, list[int]] = {}
        for token in tokens:
            name = self._underlying.get(token)
            if name is not None and name in self.chains:
                groups.setdefault(name, []).append(token)
        return [(self.chains[name], group) for name, group in groups.items()]

    def _chain(self, underlying: str) -> Chain | None:
        chain = self.chains.get(underlying)
        if chain is None:
            chain = self._chain_for(underlying)
            if chain is not None:
                self.chains[underlying] = chain
        return chain

    async def _fill(self) -> None:
        """Hold as many assigned tokens as the cap allows; report the rest as excluded."""
        excluded = self.excluded
        settled = {t for t, why in excluded.items() if why != EXCLUDED_MOCK_CAP}
        held = {t for c in self.chains.values() for t in c.book.tokens}
        waiting = sorted(self.tokens - held - settled)
        room = max(0, self._cap - len(held))
        taken = waiting[:room]
        if taken:
            await self._take(taken)
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

    async def _take(self, taken: list[int]) -> None:
        """Put the contracts of ``taken`` in their underlyings' books."""
        rows = await self._lookup(taken)
        for token in taken:
            self.excluded.pop(token, None)
        grouped: dict[str, list[OptionContract]] = {}
        unconfigured, simulated = [], set()
        for token, row in rows.items():
            self._underlying[token] = row.underlying
            contract = option_contract(row, row.lot_size)
            if contract is None:
                continue
            if self._chain(row.underlying) is None:
                unconfigured.append(token)
                continue
            grouped.setdefault(row.underlying, []).append(contract)
            self._payloads[token] = OptionPayload(row)
            simulated.add(token)
        for name, contracts in grouped.items():
            self.chains[name].book.ensure(contracts)
        self._exclude(unconfigured, EXCLUDED_NOT_CONFIGURED)
        rest = [t for t in taken if t not in simulated and t not in unconfigured]
        self._exclude(rest, EXCLUDED_NOT_SIMULATED)
