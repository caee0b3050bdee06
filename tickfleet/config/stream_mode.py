"""What a stream runs, and the ``feed`` setting that chooses it: one idea, two views.

A stream runs one of its feeds, ``live`` (Kite) or ``mock`` (the simulated market;
the name the setting, ``TICKFLEET_FEED`` and ``/health`` have always published), or it
idles. The setting is either ``auto`` (``MarketHours.feed_mode`` decides from the hours,
the credentials and ``mock_enabled``) or one of the feeds, forced; a stream can never be
forced to idle. Defined here, with the settings, because the settings' type is built
from it and the settings may import nothing above the basics.
"""

from __future__ import annotations

from typing import Literal

FeedKind = Literal["live", "mock"]
"""The feeds a stream can run: Kite's live feed, or the simulated market."""

StreamMode = Literal[FeedKind, "idle"]
"""What a stream runs at a moment: one of its feeds, or nothing."""

FeedSetting = Literal["auto", FeedKind]
"""The ``feed`` setting: ``auto``, or one feed forced whatever the hours."""
