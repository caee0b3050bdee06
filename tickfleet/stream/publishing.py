"""A stream's publishing: a publisher and a breaker for each place its ticks go.

On one Redis a stream has one lane, the ``publish`` breaker and one publisher, for every
underlying it carries: one script call per batch, whatever the mix of underlyings. On a
Redis Cluster a script call must stay in one hash slot, and an underlying's channels,
latest-tick hashes and fence share one (the hash tag in ``ticker:{nifty}``); so each
underlying gets a lane of its own, with its own breaker (``publish:nifty``), still shared
through Redis with every other stream. A shard that is down opens the breakers of its
own underlyings only; the other shards' underlyings publish on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from tickfleet.breaker import BreakerSnapshot, SharedBreaker
from tickfleet.breaker.view import SEVERITY
from tickfleet.keyspace.keys import publish_breaker
from tickfleet.stream.publisher import TickPublisher
from tickfleet.ticks.channels import Channels


@dataclass(frozen=True, slots=True)
class Lane:
    """One publisher and the breaker that guards it."""

    label: str  # "" for the one lane on one Redis; ":<underlying>" on a cluster
    publisher: TickPublisher
    breaker: SharedBreaker


LaneFactory = Callable[[str, str], tuple[TickPublisher, SharedBreaker]]
"""Makes a lane's publisher and breaker from the breaker's name and the underlying beside
whose channels the lane's fence lives (the first one's on one Redis)."""


class Publishing:
    """The stream's lanes, found by underlying."""

    def __init__(self, by_underlying: Mapping[str, Lane]) -> None:
        self._by_underlying = dict(by_underlying)
        self.lanes = list({id(lane): lane for lane in by_underlying.values()}.values())

    @classmethod
    def build(cls, underlyings: Sequence[str], sharded: bool, make: LaneFactory) -> Publishing:
        if not sharded:
            one = Lane("", *make(publish_breaker(), underlyings[0]))
            return cls(dict.fromkeys(underlyings, one))
        return cls({u: Lane(f":{u.lower()}", *make(publish_breaker(u), u)) for u in underlyings})

    def publisher(self, underlying: str) -> TickPublisher:
        return self._by_underlying[underlying].publisher

    @property
    def published(self) -> int:
        return sum(lane.publisher.published for lane in self.lanes)

    def breaker(self) -> BreakerSnapshot:
        """The most severe of the lanes' breakers (a stream reports one state)."""
        snapshots = [lane.breaker.snapshot() for lane in self.lanes]
        return max(snapshots, key=lambda s: (SEVERITY.get(s["state"], 0), s["failure_count"]))

    async def sync_once(self) -> None:
        for lane in self.lanes:
            await lane.breaker.sync_once()


def channels_of(root: str, sharded: bool) -> Callable[[str], Channels]:
    """Each underlying's channels, sharded on a cluster."""
    return lambda underlying: Channels.for_underlying(root, underlying, sharded)
