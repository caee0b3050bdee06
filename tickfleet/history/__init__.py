"""Historical candles: their intervals and Kite's limits, Kite's historical API through
the fleet's accounts (``kite_source``), and the fleet-wide rate limit it keeps
(``ratelimit``).

Only the pure values are re-exported here: ``tickfleet.kite.rest`` reads candles, and
``kite_source`` reads ``tickfleet.kite.rest``.
"""

from tickfleet.kite.candles import (
    KITE_TIMEZONE,
    Candle,
    CandleError,
    CandleQuery,
    Interval,
    RangeError,
    RangeTooLargeError,
)

__all__ = [
    "KITE_TIMEZONE",
    "Candle",
    "CandleError",
    "CandleQuery",
    "Interval",
    "RangeError",
    "RangeTooLargeError",
]
