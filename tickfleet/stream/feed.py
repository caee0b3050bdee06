"""The seam between a stream and where its ticks come from.

A stream runs one feed at a time: the simulated market outside trading hours, the live
Kite feed in them (given credentials), or none (simulation switched off and the market
closed). ``Feed`` is
all the runner needs from any of them; ``FeedSwitch`` is itself a feed that runs the one
the market hours call for and moves over when that changes, so neither the runner nor
the publisher knows which is running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Mapping
from typing import Protocol

from tickfleet.assignment.plan import Assignment
from tickfleet.config.stream_mode import StreamMode
from tickfleet.stream.status import StreamStatus
from tickfleet.supervision.cancel import cancel_and_wait

log = logging.getLogger("tickfleet.stream")

STOP_SECONDS = 5.0
LIVE_UNAVAILABLE = (
    "the live feed needs an account with Kite credentials (KITE_API_KEY and "
    "KITE_ACCESS_TOKEN, or the accounts file); streaming nothing"
)


class Feed(Protocol):
    """Where a stream's ticks come from."""

    @property
    def excluded(self) -> Mapping[int, str]:
        """Assigned tokens this feed does not stream, and why (shown while it runs)."""
        ...

    async def run(self) -> None:
        """Produce ticks until cancelled, handing each to the publisher."""
        ...

    async def apply(self, assignment: Assignment) -> None:
        """Stream what ``assignment`` gives this stream from now on (only the difference)."""
        ...

    def forget(self, tokens: Collection[int]) -> None:
        """Stop streaming ``tokens`` at once (they expired); the next assignment agrees."""
        ...


class FeedSwitch:
    """Runs the feed for the mode ``decide`` names, checked every ``check_every`` seconds.

    Every feed follows the assignment, running or not, so the one switched to starts with
    the right tokens. A failure of the running feed is this feed's failure (its
    supervisor restarts it); a mode without a feed streams nothing and says why.
    """

    def __init__(
        self,
        feeds: Mapping[StreamMode, Feed],
        decide: Callable[[], StreamMode],
        status: StreamStatus,
        check_every: float = 1.0,
    ) -> None:
        self._feeds = feeds
        self._decide = decide
        self._status = status
        self._every = check_every

    @property
    def excluded(self) -> Mapping[int, str]:
        """The running feed's."""
        return self._status.excluded

    async def apply(self, assignment: Assignment) -> None:
        for feed in self._feeds.values():
            await feed.apply(assignment)

    def forget(self, tokens: Collection[int]) -> None:
        for feed in self._feeds.values():
            feed.forget(tokens)

    async def run(self) -> None:
        mode: StreamMode | None = None
        running: asyncio.Task[None] | None = None
        try:
            while True:
                wanted = self._decide()
                if wanted != mode:
                    await _cancel(running)
                    mode, running = wanted, self._start(wanted)
                await _wait(running, self._every)
        finally:
            await _cancel(running)

    def _start(self, mode: StreamMode) -> asyncio.Task[None] | None:
        feed = self._feeds.get(mode)
        self._status.mode = mode if feed is not None else "idle"
        self._status.excluded = feed.excluded if feed is not None else {}
        self._status.unavailable = LIVE_UNAVAILABLE if mode == "live" and feed is None else None
        log.info("stream %s: feed mode %s", self._status.stream, self._status.mode)
        return asyncio.create_task(feed.run(), name=f"feed:{mode}") if feed else None


async def _wait(running: asyncio.Task[None] | None, seconds: float) -> None:
    """Sleep ``seconds``, or less if the running feed ends; its failure is raised here."""
    if running is None:
        await asyncio.sleep(seconds)
        return
    done, _ = await asyncio.wait({running}, timeout=seconds)
    if done:
        running.result()  # a failure propagates; a feed never returns on its own
        raise RuntimeError(f"feed {running.get_name()} returned")


async def _cancel(running: asyncio.Task[None] | None) -> None:
    """Cancel the running feed and wait until it has cleaned up (our own cancellation,
    should it come meanwhile, still propagates: ``wait`` does not swallow it)."""
    if running is None:
        return
    if await cancel_and_wait({running}, STOP_SECONDS):
        log.warning("feed %s ignored cancellation; left behind", running.get_name())
    elif not running.cancelled():
        running.exception()  # retrieved: it failed while being switched off
