"""Where feeds hand their ticks: each kind of tick to its channel and latest-tick hash.

Every feed, simulated or live, publishes through an ``Outlet``, so the channel names and
the latest-tick bookkeeping are decided once, not per feed.
"""

from __future__ import annotations

from collections.abc import Iterable

from tickfleet.names import Channels
from tickfleet.stream.publisher import TickPublisher


class Outlet:
    def __init__(self, publisher: TickPublisher, channels: Channels) -> None:
        self._publisher = publisher
        self._channels = channels

    def option(self, token: int, payload: bytes) -> None:
        channels = self._channels
        self._publisher.offer(channels.options, channels.latest_options, str(token), payload)

    def index(self, symbol: str, payload: bytes) -> None:
        channels = self._channels
        self._publisher.offer(channels.underlying, channels.latest_underlying, symbol, payload)

    def retract_options(self, tokens: Iterable[int]) -> None:
        """Tokens no longer streamed leave the latest-tick hash (after their last tick)."""
        self._publisher.retract(self._channels.latest_options, [str(t) for t in tokens])
