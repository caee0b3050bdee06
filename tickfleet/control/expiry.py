"""Which listed contracts have expired at an instant: the rule eviction and reloads share.

Both deactivate the subscriptions of expired contracts, eviction on its beat and a reload
before it assigns, and they must agree to the second: a contract expires at the close of
its expiry day (``MarketHours.is_expired``, from the exchange calendar's hours), so at
15:30:00 IST on that day, not at 15:29:59.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tickfleet.market.contracts import ListedInstrument
from tickfleet.market.hours import MarketHours


def expired_tokens(
    rows: Mapping[int, ListedInstrument], hours: MarketHours, now: datetime
) -> list[int]:
    """The tokens of ``rows`` whose contract has expired at ``now``, in token order."""
    return sorted(token for token, row in rows.items() if hours.is_expired(row.expiry, now))
