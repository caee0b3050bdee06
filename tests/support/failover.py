"""A stream's failover as a subscriber hears it (the fleet tests and ``bench/failover.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from tests.support.ticks import Received
from tickfleet.keyspace.streams import stream_underlying
from tickfleet.ticks.channels import Channels


def channel_of(stream: str, channels: Channels) -> str:
    """The channel a stream's ticks are heard on (``channels``: its underlying's)."""
    return channels.underlying if stream_underlying(stream) is not None else channels.options


def gap_around(ticks: Sequence[Received], channel: str, at: float) -> float | None:
    """Seconds from the last tick heard on ``channel`` up to ``at`` to the first one after
    it; None until a tick has been heard on both sides."""
    before = [r.at for r in ticks if r.channel == channel and r.at <= at]
    after = [r.at for r in ticks if r.channel == channel and r.at > at]
    if not before or not after:
        return None
    return min(after) - max(before)


def owner_pid(owner: str) -> int:
    """The pid of the process holding a lease, from its owner token (name@host:pid:id)."""
    return int(owner.rsplit(":", 2)[1])
