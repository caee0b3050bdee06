"""A long-running process's garbage collector: start-up objects out of its sight.

A full collection walks every object the process ever imported (Celery, SQLAlchemy,
NumPy, pandas under the exchange calendar: 100,000 and more), stalling the process for
tens of milliseconds up to 100 ms. Freezing what start-up made moves it out of the
collector's sight for good (it lives as long as the process anyway), so a collection
walks only what the work made since. Streams also make young collections rarer.
"""

from __future__ import annotations

import gc

# Young collections every 50,000 allocations instead of 700: a stream allocates per tick.
STREAMING_THRESHOLDS = (50_000, 50, 1000)


def freeze_startup() -> None:
    """Collect once, then freeze everything alive: call when start-up is done.

    The API: a full collection over its 160,000 start-up objects took 107 ms and was a
    burst's p99 (``bench/reload_burst.py``).
    """
    gc.collect()
    gc.freeze()


def tune_for_streaming() -> None:
    """A stream's process: at 20k ticks/s full collections put the tick→publish p99 at
    4-5 ms; frozen start-up and rarer young collections, about 1 ms (``bench/publish.py``)."""
    freeze_startup()
    gc.set_threshold(*STREAMING_THRESHOLDS)
