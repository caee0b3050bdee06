"""Settings that make a test fleet fail over and reload in seconds, not minutes.

A lease of 3 s renewed every second and a watchdog pass every second put a stream back on
a live worker about 4 s after its worker dies; reloads may start a second apart.
"""

from __future__ import annotations

from typing import Final

FAST_FLEET: Final[dict[str, float]] = {
    "lease_ttl_seconds": 3.0,
    "lease_renew_seconds": 1.0,
    "watchdog_interval_seconds": 1.0,
    "reload_min_interval_seconds": 1.0,
}
