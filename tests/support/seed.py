"""Test data: an initialised database with the offline NIFTY universe in it."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument, OfflineUniverseSource, UniverseSpec
from tickfleet.market.hours import MarketHours
from tickfleet.migrations import initialise
from tickfleet.runtime.clock import clock_from_settings
from tickfleet.storage.sql import make_engine
from tickfleet.wiring.services import Services


def now_of(settings: Settings) -> datetime:
    """ "Now" on the clock the settings give the fleet, in the market's timezone."""
    return MarketHours.from_settings(settings).at(clock_from_settings(settings).time())


def init_database(settings: Settings) -> str:
    """What ``tickfleet init-db`` does to the schema: migrate it to the newest revision and
    stamp the database."""
    engine = make_engine(
        settings.database_url, create=True, timeout=settings.database_timeout_seconds
    )
    try:
        return initialise(engine, now_of(settings))
    finally:
        engine.dispose()


def expired_option(token: int = 12073986, today: date | None = None) -> Instrument:
    """A listed contract that expired a week before ``today`` (kept until a refresh)."""
    expiry = (today or date(2026, 6, 10)) - timedelta(days=7)
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
    """Initialise the database, load the offline universe (plus one expired contract) for
    the settings' "now", and return the options."""
    init_database(settings)
    services = Services(settings)
    try:
        now = now_of(settings)
        instruments = OfflineUniverseSource(*UniverseSpec.configured(settings)).fetch(now.date())
        extra = [expired_option(today=now.date())] if with_expired else []
        services.registry.replace_all([*instruments, *extra], now)
        return [i for i in instruments if i.instrument_type in ("CE", "PE")]
    finally:
        services.close()


def near_money(options: list[Instrument], underlying: str, spot: float) -> list[Instrument]:
    """CE and PE of ``underlying``'s two strikes nearest ``spot``, nearest expiry."""
    own = [o for o in options if o.underlying == underlying]
    expiry = min(o.expiry for o in own if o.expiry is not None)
    strikes = sorted({o.strike for o in own if o.expiry == expiry}, key=lambda k: abs(k - spot))
    return [o for o in own if o.expiry == expiry and o.strike in strikes[:2]]
