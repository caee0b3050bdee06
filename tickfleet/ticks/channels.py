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
    def for_underlying(cls, root: str, underlying: str) -> Channels:
        return cls(f"{root}:{underlying.lower()}")

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
