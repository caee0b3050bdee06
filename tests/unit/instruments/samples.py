"""Reference instruments dumps (Kite Connect's published mock responses) and a spec helper."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from tickfleet.instruments.model import Instrument
from tickfleet.instruments.universe import UniverseSpec

DATA = Path(__file__).parent / "data"
SAMPLE_ALL = DATA / "instruments_all.csv"
SAMPLE_NSE = DATA / "instruments_nse.csv"
SAMPLES = (SAMPLE_ALL, SAMPLE_NSE)

# The BANKNIFTY option row of instruments_all.csv, as parsed.
OPTION = Instrument(
    instrument_token=12073986,
    exchange_token=47164,
    tradingsymbol="BANKNIFTY18JAN23500CE",
    name="",
    underlying="BANKNIFTY",
    last_price=2528.4,
    expiry=date(2018, 1, 25),
    strike=23500.0,
    tick_size=0.05,
    lot_size=40,
    instrument_type="CE",
    segment="NFO-OPT",
    exchange="NFO",
)


def data_lines(path: Path) -> int:
    """Rows of a dump counted as non-blank lines after the header (no CSV parser)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines[1:] if line.strip())


def make_spec(**overrides: Any) -> UniverseSpec:
    values: dict[str, Any] = {
        "spot": 24000.0,
        "strike_step": 50,
        "strikes_each_side": 20,
        "weekly_expiries": 4,
        "monthly_expiries": 3,
        "expiry_weekday": 1,
        "lot_size": 65,
    }
    values.update(overrides)
    return UniverseSpec(**values)
