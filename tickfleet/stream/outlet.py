"""Where feeds hand their ticks: each kind of tick to its channel and latest-tick hash.

Every feed, simulated or live, publishes through an ``Outlet``, so the channel names and
the latest-tick bookkeeping are decided once, not per feed. Each tick also goes into
the stream's bars (``tickfleet.history.bars``: memory only, flushed by the runner): a
live tick with it (``option``), a simulated chain as a whole after its ticks
(``publish_option`` each, then ``chain_bars``: the book's arrays kept as they are, not a
call a tick).
"""

from __future__ import annotations

from collections.abc import Iterable

from tickfleet.history.bars import BarBuilder
from tickfleet.market.options import ChainArrays
from tickfleet.stream.publisher import TickPublisher
from tickfleet.ticks.channels import Channels


class Outlet:
    def __init__(self, publisher: TickPublisher, channels: Channels, bars: BarBuilder) -> None:
        self._publisher = publisher
        self._channels = channels
        self.bars = bars
        self._bar = bars.add  # bound once: it runs for every tick

    @property
    def channels(self) -> Channels:
        return self._channels

    # The bar's values travel as plain arguments: a tuple per tick would cost more.
    def option(
        self, token: int, payload: bytes, ts: float, price: float, volume: int | None,
        oi: int | None, mock: bool,
    ) -> None:  # fmt: skip
        """One option tick: ``ts`` epoch seconds, ``volume`` the day's cumulative."""
        channels = self._channels
        self._publisher.offer(channels.options, channels.latest_options, str(token), payload)
        self._bar(token, ts, price, volume, oi, mock)

    def publish_option(self, token: int, payload: bytes) -> None:
        """One option tick whose bar comes with its chain's (``chain_bars``)."""
        channels = self._channels
        self._publisher.offer(channels.options, channels.latest_options, str(token), payload)

    def chain_bars(self, chain: ChainArrays, mock: bool) -> None:
        """The bars of a chain tick whose ticks went out through ``publish_option``."""
        self.bars.add_chain(
            chain.tokens, chain.timestamp, chain.prices, chain.volumes, chain.ois, mock
        )

    def index(
        self, symbol: str, payload: bytes, token: int, ts: float, price: float,
        volume: int | None, mock: bool,
    ) -> None:  # fmt: skip
        channels = self._channels
        self._publisher.offer(channels.underlying, channels.latest_underlying, symbol, payload)
        self._bar(token, ts, price, volume, None, mock)

    def publish_index(self, symbol: str, payload: bytes) -> None:
        """One index tick without a bar (a replay's: the day's bars were made when recorded)."""
        channels = self._channels
        self._publisher.offer(channels.underlying, channels.latest_underlying, symbol, payload)

    def note(self, key: str, field: str, value: bytes) -> None:
        """A feed's progress, set with the ticks offered before it (``TickPublisher.note``)."""
        self._publisher.note(key, field, value)

    @property
    def backlog(self) -> int:
        """Ticks offered and not yet sent (an unpaced feed waits on it: none is dropped)."""
        return self._publisher.backlog

    def retract_options(self, tokens: Iterable[int]) -> None:
        """Tokens no longer streamed leave the latest-tick hash (after their last tick),
        and the stream's bars."""
        tokens = list(tokens)
        self._publisher.retract(self._channels.latest_options, [str(t) for t in tokens])
        self.bars.forget(tokens)
