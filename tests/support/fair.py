"""Option prices a local Kite server can quote so that an IV exists for every one."""

from __future__ import annotations

from collections.abc import Mapping

from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument
from tickfleet.market.blackscholes import price
from tickfleet.market.hours import MarketHours
from tickfleet.runtime.clock import clock_from_settings


def fair_prices(
    chain: list[Instrument], settings: Settings, spots: Mapping[str, float], vol: float
) -> dict[int, float]:
    """Black-Scholes at ``vol`` on each option's own index level (``spots`` by underlying),
    on the 0.05 grid, as of the fleet's clock."""
    hours = MarketHours.from_settings(settings)
    now = clock_from_settings(settings).time()
    out = {}
    for row in chain:
        assert row.expiry is not None
        years = (hours.expiry_instant(row.expiry).timestamp() - now) / (365 * 86400)
        call = row.instrument_type == "CE"
        fair = float(price(spots[row.underlying], row.strike, years, vol, call, 0.065))
        out[row.instrument_token] = max(0.05, round(fair * 20) / 20)
    return out
