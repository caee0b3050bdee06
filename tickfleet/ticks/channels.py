"""The pub/sub channels and latest-tick hashes downstream consumers read.

They hang off their own prefix (``ticker:nifty`` by default), not the fleet's key prefix,
because consumers subscribe to them by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Channels:
    """Pub/sub channels and latest-tick hashes that downstream consumers read."""

    prefix: str = "ticker:nifty"

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
