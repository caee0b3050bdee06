"""Test data: the offline NIFTY universe loaded into a test's database."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from tickfleet.instruments import Instrument, OfflineUniverseSource, UniverseSpec
from tickfleet.services import Services
from tickfleet.settings import Settings


def today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.market_timezone)).date()


def expired_option(token: int = 12073986) -> Instrument:
    """A listed contract that expired last week (the registry keeps it until a refresh)."""
    expiry = date.today() - timedelta(days=7)
    return Instrument(
        instrument_token=token,
        exchange_token=token >> 8,
        tradingsymbol="NIFTYOLD24000CE",
        name="NIFTY",
        underlying="NIFTY",
        last_price=0.0,
        expiry=expiry,
        strike=24000.0,
        tick_size=0.05,
        lot_size=65,
        instrument_type="CE",
        segment="NFO-OPT",
        exchange="NFO",
    )


def seed_universe(settings: Settings, with_expired: bool = True) -> list[Instrument]:
    """Load the offline universe (plus one expired contract) and return the options."""
    services = Services(settings)
    try:
        now = datetime.now(ZoneInfo(settings.market_timezone))
        instruments = OfflineUniverseSource(UniverseSpec.from_settings(settings)).fetch(now.date())
        extra = [expired_option()] if with_expired else []
        services.registry.replace_all([*instruments, *extra], now)
        return [i for i in instruments if i.instrument_type in ("CE", "PE")]
    finally:
        services.close()
