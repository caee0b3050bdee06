"""Keeps a stream's lease alive and answers, at every flush, whether it may still publish.

The lease is the only guarantee that one account is streamed by one worker: broker
redelivery is not. The keeper renews it every ``renew_every`` seconds on the stream's
loop. A refused renewal means another worker holds the lease: the keeper raises at once,
and ``may_publish`` is already false. While Redis cannot be reached, ``may_publish``
turns false once the TTL since the last good renewal has run out (another worker could
hold the lease by then), but the stream waits instead of dying: when Redis answers again
it renews, or retakes the lease if Redis lost it, and carries on with its state (the
simulated index keeps its price and versions).

Each acquisition draws a fencing epoch (``AsyncLease.acquire``); the publisher sends it
with every batch, and a batch refused by a newer holder's fence (``fenced``) loses the
lease at once, whatever the renewals said.
"""

from __future__ import annotations

import asyncio
import logging
import os

import redis

from tickfleet.runtime.clock import Clock
from tickfleet.runtime.lease import AsyncLease, Holding

log = logging.getLogger("tickfleet.stream")


class LeaseLostError(RuntimeError):
    """The stream no longer holds its lease; it must stop."""


class LeaseKeeper:
    def __init__(self, lease: AsyncLease, renew_every: float, clock: Clock) -> None:
        self.lease = lease
        self.every = renew_every
        self.clock = clock
        self._holding = self._new_holding()
        self._holding.lost = True  # not ours until acquired
        self._parent = os.getppid()
        self._fenced_by = 0
        self.epoch = 0

    def _new_holding(self) -> Holding:
        return Holding(self.lease.ttl_ms / 1000, self.clock.monotonic(), patient=True)

    async def acquire(self) -> bool:
        holding = self._new_holding()
        self.epoch = await self.lease.acquire()
        holding.lost = not self.epoch
        self._holding = holding
        return not holding.lost

    def fenced(self, newer: int) -> None:
        """A newer holder (``newer``) published: the lease is not ours, whatever Redis says."""
        self._holding.lost = True
        self._fenced_by = newer

    def may_publish(self) -> bool:
        """True while the lease is ours for certain (checked before every flush)."""
        return self._holding.certain(self.clock.monotonic())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self._check_parent()
            if not self._holding.lost:
                started = self.clock.monotonic()
                self._holding.record(await self.lease.try_keep(), started)
            if self._fenced_by:
                raise LeaseLostError(
                    f"lease {self.lease.key} fenced: epoch {self._fenced_by} published "
                    f"after ours ({self.epoch})"
                )
            if self._holding.lost:
                raise LeaseLostError(f"lease {self.lease.key} lost (owner {self.lease.owner})")

    def _check_parent(self) -> None:
        """A prefork child outlives a SIGKILLed worker; it must not keep the stream alive.

        It releases the lease on its way out (a compare-and-delete: only if still ours),
        so a standby takes over at once instead of after the TTL.
        """
        if os.getppid() != self._parent:
            raise LeaseLostError("the worker process that started this stream is gone")

    async def release(self) -> None:
        if not self._holding.lost:
            self._holding.lost = True
            try:
                await self.lease.release()
            except (redis.RedisError, OSError) as exc:
                log.warning("lease %s not released (%s); it lapses on its own", self.lease.key, exc)
