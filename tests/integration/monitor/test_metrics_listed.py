"""Every metric the manual lists is on ``/metrics`` of a running fleet, and traffic moves it.

The metrics table of ``docs/metrics.md`` is the one list of what the fleet exports: an
operator reads it to build dashboards and alerts, so a metric renamed, dropped or added in
code without it would leave them reading nothing. The test parses the table, runs a
simulated fleet (API with a key, control worker, stream worker, beat: real processes on a
real Redis), subscribes a few options in two quick requests (the second coalesced into the
first's reload), lets ticks flow, runs an immediate reload, and compares the first scrape
in which the processes' counts have reached Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Fleet
from tests.support.manual import TRAFFIC, Listed, listed_metrics, page
from tests.support.polling import wait_until
from tests.support.seed import seed_universe
from tickfleet.config.settings import Settings
from tickfleet.instruments import Instrument

pytestmark = pytest.mark.timeout(120)

API_KEY = "metrics-listed-key-0123456789"
TICK = 0.3


def exported_name(family: Metric) -> str:
    """The name an operator queries: the parser drops a counter's ``_total``."""
    return f"{family.name}_total" if family.type == "counter" else family.name


def total(family: Metric) -> float:
    """A counter's or gauge's sum over its series; a histogram's observation count."""
    wanted = f"{family.name}_count" if family.type == "histogram" else None
    return sum(s.value for s in family.samples if wanted is None or s.name == wanted)


def label_names(family: Metric) -> set[str]:
    return {label for s in family.samples for label in s.labels} - {"le"}


@dataclass(frozen=True, slots=True)
class Scraped:
    """One scrape of ``/metrics``: its families by the name an operator queries, its text."""

    families: dict[str, Metric]
    text: str

    def counted(self, listed: dict[str, Listed]) -> dict[str, float]:
        """The rows marked "traffic", each family's total in this scrape (0 when absent)."""
        return {
            name: total(self.families[name]) if name in self.families else 0.0
            for name, row in listed.items()
            if row.must_count
        }


def scrape(api: httpx.Client) -> Scraped:
    reply = api.get("/metrics")
    assert reply.status_code == 200, reply.text
    families = text_string_to_metric_families(reply.text)
    return Scraped({exported_name(f): f for f in families}, reply.text)


@pytest.fixture
def fleet_api(
    make_settings: Callable[..., Settings], fleet_factory: Callable[..., Fleet]
) -> Iterator[httpx.Client]:
    """A simulated fleet after subscriptions, ticks and an immediate reload; its API."""
    settings = make_settings(
        feed="mock",
        archive=True,  # its metrics are listed too
        api_key=API_KEY,
        mock_tick_interval_seconds=TICK,
        watchdog_interval_seconds=1.0,
        reload_min_interval_seconds=1.0,
    )
    options = seed_universe(settings, with_expired=False)
    fleet = fleet_factory(settings)
    url = fleet.everything()
    with httpx.Client(base_url=url, headers={"X-API-Key": API_KEY}, timeout=30) as api:
        subscribe_in_two_requests(api, nearest_chain(options, 4))
        wait_until(lambda: streaming(api) == 8, 30, 0.3, "all 8 subscribed options streaming")
        assert api.post("/admin/reload", params={"immediate": "true"}).status_code == 200
        yield api


def nearest_chain(options: list[Instrument], strikes: int) -> list[Instrument]:
    """CE and PE of the ``strikes`` strikes nearest the money, nearest expiry."""
    expiry = min(o.expiry for o in options if o.expiry is not None)
    near = [o for o in options if o.expiry == expiry]
    chosen = sorted({o.strike for o in near}, key=lambda k: abs(k - 24000))[:strikes]
    return [o for o in near if o.strike in chosen]


def subscribe_in_two_requests(api: httpx.Client, chain: list[Instrument]) -> None:
    """Two POSTs inside the debounce window: the second is coalesced into a scheduled one."""
    half = len(chain) // 2
    replies = [
        api.post("/subscriptions", json=[{"instrument_token": i.instrument_token} for i in part])
        for part in (chain[:half], chain[half:])
    ]
    assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
    # The first may itself coalesce: a watchdog pass between its commit and its request
    # finds subscriptions without an assignment and schedules the reload first.
    assert replies[1].json()["reload"]["scheduled"] is False, replies[1].text


def streaming(api: httpx.Client) -> int:
    return int(total(scrape(api).families["subscriptions_streaming"]))


def reload_runs(scraped: Scraped) -> float:
    return total(scraped.families["reload_runs_total"])


def settled(api: httpx.Client, listed: dict[str, Listed], timeout: float = 10) -> Scraped:
    """The first scrape in which traffic has moved every "traffic" row and both reloads
    (the subscriptions' and the immediate one) are counted, or the last one: processes
    flush once a second, so a count may be a second behind."""
    deadline = time.monotonic() + timeout
    while True:
        scraped = scrape(api)
        moved = min(scraped.counted(listed).values()) > 0 and reload_runs(scraped) >= 2
        if moved or time.monotonic() > deadline:
            return scraped
        time.sleep(0.3)


def test_the_metrics_table_is_read_whole() -> None:
    """The parser finds every row, so the fleet test below cannot pass on an empty list."""
    text = page("metrics.md")
    listed = listed_metrics(text)
    rows = text.split("\n| metric |", 1)[1].split("\n\n", 1)[0].count("\n| `")
    assert len(listed) == rows >= 25
    assert listed["ticks_published_total"] == Listed(
        "ticks_published_total", "counter", frozenset({"stream"}), TRAFFIC
    )
    assert listed["kite_connection_up"].labels == {"stream", "connection"}
    assert sum(m.must_count for m in listed.values()) >= 10


def test_every_listed_metric_is_exported_and_traffic_moved_it(fleet_api: httpx.Client) -> None:
    listed = listed_metrics(page("metrics.md"))
    scraped = settled(fleet_api, listed)
    exported = scraped.families
    assert set(listed) - set(exported) == set(), "listed in docs/metrics.md, not on /metrics"
    assert set(exported) - set(listed) == set(), "on /metrics, not in docs/metrics.md's table"
    for name, row in listed.items():
        family = exported[name]
        assert family.type == row.type, name
        assert f"# HELP {name} " in scraped.text and f"# TYPE {name} " in scraped.text, name
        if family.samples:
            assert label_names(family) == row.labels, name
    counted = scraped.counted(listed)
    print("moved by traffic:", {n: round(v, 3) for n, v in counted.items()})
    assert {n for n, v in counted.items() if v <= 0} == set(), counted
    assert reload_runs(scraped) >= 2, "the subscriptions' reload and the immediate one"
    with_series = [n for n, row in listed.items() if row.must_have_series]
    assert with_series and all(exported[n].samples for n in with_series), with_series
    assert total(exported["redis_circuit_state"]) == 0, "the breaker stayed closed"
