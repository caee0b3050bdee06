"""Several underlyings at once, heard from a real fleet (API, control worker, stream
worker, beat) through real Redis: every subscribed option of NIFTY, BANKNIFTY and SENSEX
ticks on its own underlying's channel, priced against its own index (put-call parity
gives back that index's level, not another's), and SENSEX's options are BFO contracts."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import Fleet
from tests.support.seed import near_money, seed_universe
from tests.support.ticks import collecting
from tests.support.timing import FAST_FLEET
from tests.support.underlyings import (
    PAIRS,
    UNDERLYINGS,
    check_chain_pages,
    check_underlying,
    enough_chains,
)
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument

pytestmark = pytest.mark.timeout(120)


def test_each_underlyings_options_tick_on_its_channels_priced_on_its_own_index(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> None:
    settings = make_settings(
        feed="mock", underlyings=",".join(UNDERLYINGS), mock_tick_interval_seconds=0.3, **FAST_FLEET
    )
    options = seed_universe(settings, with_expired=False)
    chosen = {n: near_money(options, n, settings.underlying(n).spot) for n in UNDERLYINGS}
    url = fleet_factory(settings).everything(streams=len(UNDERLYINGS) + 1)
    with collecting(settings, UNDERLYINGS) as collectors:
        with httpx.Client(base_url=url, timeout=30) as api:
            body = [{"instrument_token": o.instrument_token} for c in chosen.values() for o in c]
            assert api.post("/subscriptions", json=body).status_code == 200
            next(iter(collectors.values())).wait_for(
                lambda _: enough_chains(collectors),
                60,
                f"{PAIRS} whole chain ticks of each underlying",
            )
            check_chain_pages(api, chosen)
            _counted_by_name(api, chosen)
        heard = {name: c.options() for name, c in collectors.items()}
        index = {name: c.underlying() for name, c in collectors.items()}
    for name in UNDERLYINGS:
        check_underlying(settings, name, chosen[name], heard[name], index[name])


def _counted_by_name(api: httpx.Client, chosen: dict[str, list[Instrument]]) -> None:
    """``/health`` and ``/metrics`` count each underlying's subscriptions by its name."""
    expected = {name: {"active": len(o), "streaming": len(o)} for name, o in chosen.items()}
    deadline = time.monotonic() + 20
    while True:  # /health's streaming verdict follows the streams' status, a second apart
        counted = api.get("/health").json()["subscriptions"]["by_underlying"]
        if counted == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert counted == expected
    metrics = api.get("/metrics").text
    for name, options in chosen.items():
        line = f'underlying_subscriptions_streaming{{underlying="{name}"}} {float(len(options))}'
        assert line in metrics, line
