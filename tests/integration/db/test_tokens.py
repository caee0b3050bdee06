"""Kite's largest instrument token, 2**32 - 1, is stored and read back unchanged.

PostgreSQL's INTEGER ends at 2**31 - 1: a 32-bit token column refused it there.
"""

from __future__ import annotations

import pytest

from tests.support.instants import FLEET_NOW
from tests.support.seed import expired_option, init_database
from tickfleet.config.settings import Settings
from tickfleet.subscriptions.store import SubscriptionRequest
from tickfleet.wiring.services import Services

pytestmark = pytest.mark.timeout(30)

TOP_TOKEN = 4_294_967_295


def test_the_largest_kite_token_round_trips(database_url: str) -> None:
    settings = Settings(database_url=database_url)
    init_database(settings)
    services = Services(settings)
    instrument = expired_option(token=TOP_TOKEN, today=FLEET_NOW.date())
    try:
        [created] = services.subscriptions.upsert_many([SubscriptionRequest(TOP_TOKEN)], FLEET_NOW)
        services.registry.replace_all([instrument], FLEET_NOW)

        stored = services.subscriptions.get(TOP_TOKEN)
        assert created.token == TOP_TOKEN
        assert stored is not None and stored.token == TOP_TOKEN
        assert [s.token for s in services.subscriptions.active()] == [TOP_TOKEN]
        assert services.registry.get(TOP_TOKEN) == instrument
        assert services.subscriptions.deactivate([TOP_TOKEN], "test", FLEET_NOW) == [TOP_TOKEN]
    finally:
        services.close()
