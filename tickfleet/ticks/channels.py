"""The pub/sub channels and latest-tick hashes downstream consumers read.

Each underlying has its own: ``ticker:<underlying>:options`` and so on, the underlying
in lower case (NIFTY's are ``ticker:nifty:*``, the names the predecessor's consumers
know). They hang off their own root (``TICKFLEET_CHANNEL_ROOT``), not the fleet's key
prefix, because consumers subscribe to them by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Channels:
    """Pub/sub channels and latest-tick hashes that downstream consumers read."""

    prefix: str = "ticker:nifty"

    @classmethod
    def for_underlying(cls, root: str, underlying: str, sharded: bool = False) -> Channels:
        """``sharded`` (a Redis Cluster): the underlying in a hash tag, ``ticker:{nifty}``,
        so its channels and hashes share one slot, and one shard carries them."""
        name = underlying.lower()
        return cls(f"{root}:{{{name}}}" if sharded else f"{root}:{name}")

    @property
    def options(self) -> str:
        return f"{self.prefix}:options"

    @property
    def underlying(self) -> str:
        return f"{self.prefix}:underlying"

    @property
    def events(self) -> str:
        """Subscription lifecycle events (created, deleted, removed)."""
        return f"{self.prefix}:events"

    @property
    def latest_options(self) -> str:
        """Hash token → latest option tick JSON, for late joiners."""
        return f"{self.prefix}:latest:options"

    @property
    def latest_underlying(self) -> str:
        return f"{self.prefix}:latest:underlying"

    def fence(self, stream: str) -> str:
        """The epoch of the newest lease holder that published for ``stream`` (see
        ``tickfleet.stream.publisher``). Beside the channels, on the publish Redis, so the
        publish script checks it in the same call that publishes."""
        return f"{self.prefix}:fence:{stream}"

    @property
    def replay_position(self) -> str:
        """Hash stream → the last replayed tick of the underlying that reached consumers
        (see ``tickfleet.stream.feeds.replay``). Beside the channels, like the fence: the
        publish script sets it in the call that publishes those ticks."""
        return f"{self.prefix}:replay:position"
