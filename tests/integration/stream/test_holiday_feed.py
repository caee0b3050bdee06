"""On an NSE weekday holiday, `auto` with broker credentials simulates the market.

The fleet's clock reads Tuesday 2026-11-24, 11:00 IST (Guru Nanak Jayanti: NSE closed),
in what would be market hours on any other Tuesday.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.instants import ist, offset_to
from tests.support.polling import wait_until
from tests.support.seed import seed_universe
from tests.support.ticks import TickCollector
from tests.support.timing import FAST_FLEET
from tickfleet.config.settings import Settings

pytestmark = pytest.mark.timeout(120)

HOLIDAY = ist(2026, 11, 24, 11, 0)
ACCOUNTS = '[{"account_id": "kite-1", "api_key": "k1", "access_token": "t1"}]'


def test_auto_with_credentials_simulates_on_a_holiday(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(
        feed="auto",
        accounts=ACCOUNTS,
        mock_tick_interval_seconds=0.3,
        **FAST_FLEET,
        clock_offset_seconds=offset_to(HOLIDAY),
    )
    options = seed_universe(settings, with_expired=False)
    tokens = {o.instrument_token for o in options[:2]}
    fleet = fleet_factory(settings)
    url = fleet.everything()
    ticks = TickCollector(settings.redis_url).start()
    try:
        with httpx.Client(base_url=url, timeout=30) as api:
            body = [{"instrument_token": t} for t in tokens]
            assert api.post("/subscriptions", json=body).status_code == 200
            ticks.wait_for(
                lambda c: tokens <= {t["instrument_token"] for t in c.options()}, 20, "ticks"
            )
            assert all(t["is_mock"] is True for t in ticks.options())
            modes = lambda: {  # noqa: E731 - statuses are reported once a second
                name: s["mode"] for name, s in api.get("/health").json()["streams"].items()
            }
            wait_until(lambda: "starting" not in modes().values(), 5, 0.2, "modes reported")
            assert modes() == {"account:kite-1": "mock", "underlying:NIFTY": "mock"}
    finally:
        ticks.stop()
