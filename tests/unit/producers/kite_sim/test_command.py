"""``tickfleet kite-sim`` as an operator runs it: a process, its printed variables, a signal."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from kiteconnect import KiteConnect
from kiteconnect.exceptions import TokenException
from websockets.sync.client import connect

from producers.kite_sim.command import opening_prices
from tests.support.processes import BIN, FleetProcess
from tickfleet.config.settings import Settings
from tickfleet.instruments.universe import INDEX_TOKEN, UniverseSpec, generate_universe
from tickfleet.kite import connect_url, is_heartbeat, parse_frame, set_mode, subscribe

TOKEN = "sim-SECRET-7e1"
INDEX = "NSE:NIFTY 50"
pytestmark = pytest.mark.timeout(60)

StartSim = Callable[..., FleetProcess]


@pytest.fixture
def start_sim(tmp_path: Path) -> Iterator[StartSim]:
    """Starts ``tickfleet kite-sim``; whatever is still running afterwards is killed."""
    started: list[FleetProcess] = []

    def start(*options: str) -> FleetProcess:
        argv = [str(BIN / "python"), "-m", "producers.cli", "kite-sim", *options]
        env = {"TICKFLEET_LOG_LEVEL": "DEBUG", "TICKFLEET_MOCK_TICK_INTERVAL_SECONDS": "0.05"}
        sim = FleetProcess(f"kite-sim-{len(started)}", argv, env, tmp_path)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop(timeout=5)


def printed_variables(sim: FleetProcess) -> dict[str, str]:
    sim.wait_for_log("KITE_API_KEY=", timeout=30)
    return dict(re.findall(r"^(KITE_[A-Z_]+)=(\S+)$", sim.log(), re.MULTILINE))


def stopped_by(sim: FleetProcess, sig: signal.Signals) -> float:
    """Seconds from ``sig`` to the process's exit; its status must be 0."""
    start = time.monotonic()
    sim.proc.send_signal(sig)
    assert sim.proc.wait(timeout=5) == 0
    return time.monotonic() - start


def test_kite_sim_serves_rest_and_ticks_until_sigterm(start_sim: StartSim) -> None:
    sim = start_sim("--access-token", TOKEN, "--spot", "24100")
    env = printed_variables(sim)
    assert set(env) == {"KITE_TICKER_URL", "KITE_API_URL", "KITE_API_KEY"}
    kite = KiteConnect(env["KITE_API_KEY"], TOKEN, root=env["KITE_API_URL"], timeout=5)
    try:
        options = kite.instruments("NFO")
        assert kite.ltp(INDEX)[INDEX] == {"instrument_token": INDEX_TOKEN, "last_price": 24100.0}
        call = next(o for o in options if o["strike"] == 24100.0 and o["instrument_type"] == "CE")
        call_key = f"NFO:{call['tradingsymbol']}"
        opening = kite.ltp(call_key)[call_key]["last_price"]
        with pytest.raises(TokenException):
            KiteConnect(env["KITE_API_KEY"], "stale", root=env["KITE_API_URL"]).ltp(INDEX)
    finally:
        kite.reqsession.close()
    url = connect_url(env["KITE_TICKER_URL"], env["KITE_API_KEY"], TOKEN)
    tokens = [INDEX_TOKEN, call["instrument_token"]]
    with connect(url, open_timeout=5) as ws:
        ws.send(subscribe(tokens))
        ws.send(set_mode("full", tokens))
        ticks: dict[int, Any] = {}
        while len(ticks) < 2 or any(t.mode != "full" for t in ticks.values()):
            message = ws.recv(timeout=5)
            if isinstance(message, bytes) and not is_heartbeat(message):
                ticks |= {t.instrument_token: t for t in parse_frame(message).ticks}
    assert abs(ticks[INDEX_TOKEN].last_price / 24100.0 - 1) < 0.01
    assert abs(ticks[call["instrument_token"]].last_price / opening - 1) < 0.05
    assert stopped_by(sim, signal.SIGTERM) < 5
    assert TOKEN not in sim.log()  # neither printed nor logged
    assert "access_token=***" in sim.log()  # the handshake's debug line, masked


def test_kite_sim_prints_the_token_when_asked_and_stops_on_ctrl_c(start_sim: StartSim) -> None:
    sim = start_sim("--api-key", "demo_key", "--access-token", TOKEN, "--show-token")
    env = printed_variables(sim)
    assert (env["KITE_API_KEY"], env["KITE_ACCESS_TOKEN"]) == ("demo_key", TOKEN)
    assert stopped_by(sim, signal.SIGINT) < 5
    assert sim.log().count(TOKEN) == 1  # the printed line, and no log line


def test_opening_prices_put_the_chain_around_the_spot() -> None:
    settings = Settings(exchange_calendar="none")
    spec = UniverseSpec(24000.0, 50, 4, 2, 1, expiry_weekday=1, lot_size=65)
    universe = generate_universe(date(2026, 1, 5), 24100.0, spec)
    now = datetime(2026, 1, 5, 12, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    prices = opening_prices(universe, 24100.0, now, settings)
    assert set(prices) == {i.instrument_token for i in universe}
    assert prices[INDEX_TOKEN] == 24100.0
    nearest = sorted(
        (i for i in universe if i.expiry == universe[1].expiry), key=lambda i: i.strike
    )
    calls = [prices[i.instrument_token] for i in nearest if i.instrument_type == "CE"]
    puts = [prices[i.instrument_token] for i in nearest if i.instrument_type == "PE"]
    assert len(calls) == len(puts) == 9
    assert calls == sorted(calls, reverse=True) and puts == sorted(puts)
    assert all(p >= 0.05 and round(p / 0.05, 6).is_integer() for p in prices.values())
    assert 50 < calls[4] < 500 and 50 < puts[4] < 500  # at the money, a day before expiry
