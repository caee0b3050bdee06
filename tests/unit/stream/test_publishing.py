"""A stream's lanes: one for every underlying on one Redis, one each on a Redis Cluster,
each fenced and broken beside its own underlying's slot."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from redis.crc import key_slot

from tickfleet.breaker import SharedBreaker
from tickfleet.keyspace.keys import publish_breaker
from tickfleet.stream.publisher import TickPublisher, publish_batch
from tickfleet.stream.publishing import Publishing, channels_of

pytestmark = pytest.mark.timeout(10)

NAMES = ["NIFTY", "BANKNIFTY", "SENSEX"]


@dataclass
class Made:
    """What the lane factory was asked for (a lane's parts are never used here)."""

    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, breaker: str, underlying: str) -> tuple[TickPublisher, SharedBreaker]:
        self.calls.append((breaker, underlying))
        return object(), object()  # type: ignore[return-value]


def test_one_redis_has_one_lane_for_every_underlying() -> None:
    made = Made()
    publishing = Publishing.build(NAMES, False, made)
    assert made.calls == [("publish", "NIFTY")]  # fenced beside the first underlying
    assert [lane.label for lane in publishing.lanes] == [""]
    assert len({id(publishing.publisher(n)) for n in NAMES}) == 1


def test_a_cluster_has_a_lane_and_a_breaker_per_underlying() -> None:
    made = Made()
    publishing = Publishing.build(NAMES, True, made)
    assert made.calls == [(f"publish:{n.lower()}", n) for n in NAMES]
    assert [publish_breaker(n) for n in NAMES] == [b for b, _ in made.calls]
    assert [lane.label for lane in publishing.lanes] == [f":{n.lower()}" for n in NAMES]
    assert len({id(publishing.publisher(n)) for n in NAMES}) == 3


def test_an_underlyings_channels_hashes_and_fence_share_one_slot_on_a_cluster() -> None:
    channels = channels_of("ticker", True)("BANKNIFTY")
    names = [
        channels.options, channels.underlying, channels.events,
        channels.latest_options, channels.latest_underlying, channels.fence("account:a"),
    ]  # fmt: skip
    assert channels.options == "ticker:{banknifty}:options"
    assert len({key_slot(n.encode()) for n in names}) == 1
    assert channels_of("ticker", False)("BANKNIFTY").options == "ticker:banknifty:options"


def test_the_cluster_script_publishes_sharded() -> None:
    assert "'SPUBLISH'" in publish_batch(True) and "'PUBLISH'" not in publish_batch(True)
    assert "'PUBLISH'" in publish_batch(False) and "SPUBLISH" not in publish_batch(False)
