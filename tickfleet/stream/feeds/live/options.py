"""An account's live option feed: Kite's ticks, with IV and greeks, on the options channel.

The account's assigned tokens are streamed on the connections the assignment gives them
(at most 3000 each), in their subscriptions' modes; an assignment change is applied on
the open sockets. Every frame is enriched at once: the implied volatility from the last
price, the live level of the option's own index (its underlying stream's snapshot, at
most ``SPOT_MAX_AGE_SECONDS`` old) and the time to the contract's expiry instant, then the
greeks at that volatility. What cannot be computed (no fresh index level, a price no
volatility explains) is published as ``null`` and counted, never as NaN. Payloads come
from the same builder as the simulated market's, with ``is_mock`` false.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import NamedTuple

import numpy as np

from tickfleet.assignment.plan import Assignment
from tickfleet.instruments import Instrument
from tickfleet.kite.connection import ConnectionConfig
from tickfleet.kite.packets import Tick, TickMode
from tickfleet.kite.pool import ConnectionPool
from tickfleet.market.enrichment import enrich
from tickfleet.market.hours import MarketHours
from tickfleet.market.snapshot import RedisSnapshotStore
from tickfleet.metrics.catalog import Metrics
from tickfleet.runtime.clock import Clock
from tickfleet.stream.feeds.live.session import LiveSession, pool_connections
from tickfleet.stream.feeds.simulated.options import RowLookup
from tickfleet.stream.outlet import Outlet
from tickfleet.stream.status import EXCLUDED_NOT_CATALOGUED, EXCLUDED_NOT_CONFIGURED, StreamStatus
from tickfleet.ticks.payloads import OptionPayload, Stamp

log = logging.getLogger("tickfleet.stream")

SPOT_MAX_AGE_SECONDS = 10.0
SPOT_READ_SECONDS = 0.25
SECONDS_PER_YEAR = 365.0 * 86_400.0
_NO_GREEKS = (None, None, None, None, None)

Greeks5 = tuple[float | None, float | None, float | None, float | None, float | None]


def kite_mode(mode: str) -> TickMode:
    """A subscription's mode (``FULL``, ``QUOTE``, ``LTP``) as Kite names it."""
    lowered = mode.lower()
    return "full" if lowered == "full" else "quote" if lowered == "quote" else "ltp"


@dataclass(frozen=True, slots=True)
class LiveContract:
    """What enrichment and the payload need of one streamed instrument."""

    payload: OptionPayload
    strike: float
    expires_at: float | None  # epoch seconds of the expiry instant; None: not an option
    is_call: bool
    underlying: str

    @classmethod
    def of(cls, row: Instrument, hours: MarketHours) -> LiveContract:
        option = row.instrument_type in ("CE", "PE") and row.expiry is not None
        expires = hours.expiry_instant(row.expiry).timestamp() if option and row.expiry else None
        call = row.instrument_type == "CE"
        return cls(OptionPayload(row), float(row.strike), expires, call, row.underlying)


class SpotWatch:
    """The latest index level the underlying stream wrote, read a few times a second."""

    def __init__(self, snapshots: RedisSnapshotStore, clock: Clock) -> None:
        self._snapshots = snapshots
        self._clock = clock
        self._price: float | None = None
        self._at = 0.0

    def price(self, now: float) -> float | None:
        """The index level, or None when there is none younger than the limit."""
        return self._price if now - self._at <= SPOT_MAX_AGE_SECONDS else None

    async def run(self) -> None:
        while True:
            snapshot = await self._snapshots.read()
            if snapshot is not None:
                self._price, self._at = snapshot.price, snapshot.ts
            await asyncio.sleep(SPOT_READ_SECONDS)


class LiveSide(NamedTuple):
    """One underlying's part of an account's live feed: its index level, its channels."""

    spot: SpotWatch
    outlet: Outlet


class LiveOptions:
    """The ``Feed`` of an account stream in market hours with a Kite session; each
    option goes out on its own underlying's channels, enriched against its own index."""

    def __init__(
        self,
        account_id: str,
        session: LiveSession,
        ticker_url: str,
        config: ConnectionConfig,
        lookup: RowLookup,
        sides: Mapping[str, LiveSide],
        status: StreamStatus,
        hours: MarketHours,
        rate: float,
        clock: Clock,
        tz: tzinfo,
        metrics: Metrics,
    ) -> None:
        self.account_id = account_id
        self._session = session
        self._ticker_url = ticker_url
        self._lookup = lookup
        self._sides = sides
        self._status = status
        self._hours = hours
        self._rate = rate
        self._clock = clock
        self._tz = tz
        self._metrics = metrics
        self._contracts: dict[int, LiveContract] = {}
        self.excluded: dict[int, str] = {}  # assigned, not streamed, and why
        self._plan: dict[int, dict[int, TickMode]] = {}
        self._versions = itertools.count(int(clock.time() * 1000))
        self.pool = ConnectionPool(
            f"account:{account_id}", config, self.publish, clock, metrics, status.connections
        )

    async def run(self) -> None:
        spots = [
            asyncio.create_task(side.spot.run(), name=f"live:spot:{name}")
            for name, side in self._sides.items()
        ]
        try:
            await self._session.run(pool_connections(self.pool, self._ticker_url))
        finally:
            for spot in spots:
                spot.cancel()
            await asyncio.gather(*spots, return_exceptions=True)

    async def apply(self, assignment: Assignment) -> None:
        modes = assignment.modes
        plan = {
            number: {t: kite_mode(modes.get(t, "FULL")) for t in tokens}
            for number, tokens in assignment.connections_for(self.account_id).items()
        }
        wanted = {t for tokens in plan.values() for t in tokens}
        removed = set(self._contracts) - wanted
        added = sorted(wanted - set(self._contracts))
        if added:
            rows = await self._lookup(added)
            self._contracts.update((t, LiveContract.of(r, self._hours)) for t, r in rows.items())
        self._drop(removed)
        self._exclude_unstreamable(wanted)
        self._replan(
            {
                n: {t: m for t, m in modes.items() if t in self._contracts}
                for n, modes in plan.items()
            }
        )
        if added or removed:
            log.info(
                "stream %s applied assignment v%d: +%d -%d tokens (%d total)",
                self._status.stream, assignment.version, len(added), len(removed), len(wanted),
            )  # fmt: skip

    def _exclude_unstreamable(self, wanted: set[int]) -> None:
        """Assigned tokens without a registry row, or of an underlying the fleet does not
        stream, are not streamed; /health names them."""
        missing = {t: EXCLUDED_NOT_CATALOGUED for t in wanted if t not in self._contracts}
        foreign = {
            t: EXCLUDED_NOT_CONFIGURED
            for t in wanted
            if t in self._contracts and self._contracts[t].underlying not in self._sides
        }
        if (missing.keys() | foreign.keys()) - self.excluded.keys():
            log.warning(
                "stream %s: %d assigned tokens have no registry row in the catalog and %d "
                "belong to underlyings not configured; not streamed (see /health)",
                self._status.stream, len(missing), len(foreign),
            )  # fmt: skip
        self.excluded.clear()
        self.excluded.update(missing)
        self.excluded.update(foreign)

    def forget(self, tokens: Collection[int]) -> None:
        gone = set(tokens)
        plan = {
            n: {t: m for t, m in modes.items() if t not in gone} for n, modes in self._plan.items()
        }
        self._drop(gone & set(self._contracts))
        self._replan(plan)

    def publish(self, ticks: Sequence[Tick]) -> None:
        """One frame's ticks, enriched, each to its underlying's options channel (the
        connections call it)."""
        now = self._clock.time()
        contracts = self._contracts
        groups: dict[str, list[tuple[Tick, LiveContract]]] = {}
        for t in ticks:
            c = contracts.get(t.instrument_token)
            if c is not None and c.underlying in self._sides:
                groups.setdefault(c.underlying, []).append((t, c))
        if not groups:
            return
        stamp, version = Stamp.of(now, self._tz), next(self._versions)
        for name, known in groups.items():
            side = self._sides[name]
            option = side.outlet.option
            for (t, c), g in zip(known, self._greeks(known, side.spot, now), strict=True):
                payload = c.payload.tick(
                    stamp, t.last_price, t.volume_traded, t.oi, *g, version, False, t.close,
                    t.depth, t.total_buy_quantity, t.total_sell_quantity,
                )  # fmt: skip
                option(t.instrument_token, payload, now, t.last_price, t.volume_traded, t.oi, False)
        self._status.last_tick_at = now

    def _greeks(
        self, known: list[tuple[Tick, LiveContract]], index: SpotWatch, now: float
    ) -> list[Greeks5]:
        """IV and greeks per tick against ``index``; None where they cannot be computed
        (counted)."""
        out: list[Greeks5] = [_NO_GREEKS] * len(known)
        rows = [i for i, (_, c) in enumerate(known) if c.expires_at is not None]
        if not rows:
            return out
        spot = index.price(now)
        if spot is None:
            self._metrics.inc("live_greeks_missing_total", len(rows), {"reason": "no_underlying"})
            return out
        enriched = enrich(
            np.fromiter((known[i][0].last_price for i in rows), float, len(rows)),
            spot,
            np.fromiter((known[i][1].strike for i in rows), float, len(rows)),
            (np.fromiter((known[i][1].expires_at or 0.0 for i in rows), float, len(rows)) - now)
            / SECONDS_PER_YEAR,
            np.fromiter((known[i][1].is_call for i in rows), bool, len(rows)),
            self._rate,
        )
        values = zip(
            enriched.iv.tolist(), enriched.delta.tolist(), enriched.gamma.tolist(),
            enriched.theta.tolist(), enriched.vega.tolist(), enriched.unsolved.tolist(),
            strict=True,
        )  # fmt: skip
        unsolved = 0
        for i, (iv, delta, gamma, theta, vega, missing) in zip(rows, values, strict=True):
            if missing:
                unsolved += 1
            else:
                out[i] = (iv, delta, gamma, theta, vega)
        if unsolved:
            self._metrics.inc("live_greeks_missing_total", unsolved, {"reason": "iv_unsolved"})
        return out

    def _replan(self, plan: dict[int, dict[int, TickMode]]) -> None:
        self._plan = plan
        self.pool.plan(plan)
        self._status.tokens = self.pool.tokens

    def _drop(self, tokens: Collection[int]) -> None:
        groups: dict[str, list[int]] = {}
        for token in tokens:
            contract = self._contracts.pop(token, None)
            if contract is not None and contract.underlying in self._sides:
                groups.setdefault(contract.underlying, []).append(token)
        for name, group in groups.items():
            self._sides[name].outlet.retract_options(group)
