"""One instrument refresh: fetch from a source, replace the registry, say what changed."""

from __future__ import annotations

import logging
from datetime import date, datetime

from tickfleet.instruments.registry import InstrumentRegistry, RefreshSummary
from tickfleet.instruments.source import InstrumentSource

logger = logging.getLogger(__name__)


def refresh_instruments(
    registry: InstrumentRegistry, source: InstrumentSource, today: date, now: datetime
) -> RefreshSummary:
    """Replace the registry's contents with ``source``'s list for ``today``.

    A failing source raises before the registry is touched, so yesterday's list stays.
    """
    summary = registry.replace_all(source.fetch(today), now)
    logger.info(
        "instruments refreshed from %s: added %d, updated %d, removed %d, total %d",
        source.name,
        summary.added,
        summary.updated,
        summary.removed,
        summary.total,
    )
    return summary
