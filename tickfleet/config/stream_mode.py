"""What a stream runs, and the ``feed`` setting that chooses it: one idea, two views.

A stream runs one of its feeds, ``live`` (Kite), ``mock`` (the simulated market;
the name the setting, ``TICKFLEET_FEED`` and ``/health`` have always published) or
``replay`` (a recorded day from the tick archive), or it idles. The setting is either
``auto`` (``MarketHours.feed_mode`` decides from the hours, the credentials,
``mock_enabled`` and ``off_hours``) or one of the feeds, forced; a stream can never be
forced to idle. Defined here, with the settings, because the settings' type is built
from it and the settings may import nothing above the basics.
"""

from __future__ import annotations

from typing import Literal

FeedKind = Literal["live", "mock", "replay"]
"""The feeds a stream can run: Kite's live feed, the simulated market, or a replay."""

StreamMode = Literal[FeedKind, "idle"]
"""What a stream runs at a moment: one of its feeds, or nothing."""

FeedSetting = Literal["auto", FeedKind]
"""The ``feed`` setting: ``auto``, or one feed forced whatever the hours."""

OffHours = Literal["mock", "replay"]
"""What ``auto`` runs while the market is closed (``TICKFLEET_OFF_HOURS``): the simulated
market, or a replay of the last recorded session."""
