from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.unit.instruments.samples import SAMPLE_ALL, make_spec
from tickfleet.accounts.access_tokens import Credentials
from tickfleet.config.settings import Settings
from tickfleet.config.underlyings import KNOWN
from tickfleet.instruments.csv_dump import read_dump, write_dump
from tickfleet.instruments.errors import InstrumentDumpError, InstrumentSourceError
from tickfleet.instruments.model import Instrument
from tickfleet.instruments.source import (
    CsvFileSource,
    KiteDumpSource,
    OfflineUniverseSource,
    choose_source,
    select_underlyings,
)
from tickfleet.instruments.universe import UniverseSpec, generate_universe

NOV_4 = date(2025, 11, 4)


def nifty_future(universe: list[Instrument]) -> Instrument:
    option = universe[1]
    return replace(
        option,
        instrument_token=option.instrument_token + 256 * 7,
        exchange_token=option.exchange_token + 7,
        tradingsymbol="NIFTY25NOVFUT",
        instrument_type="FUT",
        strike=0.0,
        segment="NFO-FUT",
    )


def nifty_on_bfo(universe: list[Instrument]) -> Instrument:
    option = universe[1]
    return replace(option, instrument_token=5, tradingsymbol="NIFTYBFO", exchange="BFO")


def test_select_keeps_the_index_and_nfo_derivatives_of_the_underlyings() -> None:
    universe = generate_universe(NOV_4, 24000.0, make_spec(strikes_each_side=2))
    others = read_dump(SAMPLE_ALL)
    assert not any(item.underlying == "NIFTY" for item in others)
    future = nifty_future(universe)
    mixed = [*others, *universe, future, nifty_on_bfo(universe)]
    assert select_underlyings(mixed, ("NIFTY",)) == [*universe, future]


def test_select_with_none_keeps_everything() -> None:
    everything = read_dump(SAMPLE_ALL)
    assert select_underlyings(everything, None) == everything


def test_select_by_another_underlying() -> None:
    kept = select_underlyings(read_dump(SAMPLE_ALL), ("BANKNIFTY",))
    assert kept
    assert all(item.tradingsymbol.startswith("BANKNIFTY") for item in kept)
    assert len(kept) == sum(
        1 for item in read_dump(SAMPLE_ALL) if item.tradingsymbol.startswith("BANKNIFTY")
    )


def test_csv_file_source_reads_the_file(tmp_path: Path) -> None:
    universe = generate_universe(NOV_4, 24000.0, make_spec(strikes_each_side=3))
    path = tmp_path / "instruments.csv"
    path.write_text(write_dump([*read_dump(SAMPLE_ALL), *universe]), encoding="utf-8")
    assert CsvFileSource(path, underlyings=("NIFTY",)).fetch(NOV_4) == universe
    assert len(CsvFileSource(path).fetch(NOV_4)) == len(read_dump(SAMPLE_ALL)) + len(universe)


def test_a_missing_or_broken_csv_file_says_so_and_which_setting_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(InstrumentSourceError) as caught:
        CsvFileSource(missing).fetch(NOV_4)
    assert str(caught.value) == f"csv file {missing}: No such file or directory"
    assert caught.value.remedy is not None
    assert "TICKFLEET_INSTRUMENTS_CSV" in caught.value.remedy
    broken = tmp_path / "broken.csv"
    broken.write_text("not,a,dump\n", encoding="utf-8")
    with pytest.raises(InstrumentDumpError) as dumped:
        CsvFileSource(broken).fetch(NOV_4)
    assert dumped.value.remedy is not None
    assert dumped.value.remedy.startswith("fix the file, or point TICKFLEET_INSTRUMENTS_CSV")


def test_offline_source_generates_the_universe_for_the_given_day() -> None:
    spec = make_spec(spot=24100.0)
    source = OfflineUniverseSource(spec)
    assert source.fetch(NOV_4) == generate_universe(NOV_4, 24100.0, spec)
    assert source.fetch(date(2025, 11, 12)) == generate_universe(date(2025, 11, 12), 24100.0, spec)


def test_offline_source_lists_each_specs_universe_in_order() -> None:
    nifty = make_spec(spot=24100.0)
    sensex = make_spec(spot=82000.0, strike_step=100, underlying=KNOWN["SENSEX"])
    fetched = OfflineUniverseSource(nifty, sensex).fetch(NOV_4)
    assert fetched == [
        *generate_universe(NOV_4, 24100.0, nifty),
        *generate_universe(NOV_4, 82000.0, sensex),
    ]
    assert len({row.instrument_token for row in fetched}) == len(fetched)


def base_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "instruments_csv": None,
        "kite_api_key": None,
        "kite_access_token": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def test_choose_source_prefers_a_configured_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "dump.csv"
    settings = base_settings(instruments_csv=path)
    source = choose_source(settings, Credentials("k", SecretStr("t"), "configuration"))
    assert isinstance(source, CsvFileSource)
    assert source.path == path


def test_choose_source_uses_kite_with_a_session() -> None:
    settings = base_settings(kite_api_url="http://127.0.0.1:9")
    source = choose_source(settings, Credentials("key123", SecretStr("tok456"), "admin"))
    assert isinstance(source, KiteDumpSource)
    assert source.root == "http://127.0.0.1:9"
    assert source.underlyings == ("NIFTY",)
    assert "tok456" not in source.name


def test_choose_source_falls_back_to_the_offline_universe() -> None:
    settings = base_settings(mock_strikes_each_side=4)
    source = choose_source(settings, None)
    assert isinstance(source, OfflineUniverseSource)
    assert source.specs == (UniverseSpec.from_settings(settings),)


def test_choose_source_keeps_the_configured_underlyings(tmp_path: Path) -> None:
    settings = base_settings(underlyings="sensex, NIFTY", instruments_csv=tmp_path / "d.csv")
    source = choose_source(settings, None)
    assert isinstance(source, CsvFileSource)
    assert source.underlyings == ("SENSEX", "NIFTY")
    offline = choose_source(base_settings(underlyings="SENSEX,NIFTY"), None)
    assert isinstance(offline, OfflineUniverseSource)
    assert [s.underlying.name for s in offline.specs] == ["SENSEX", "NIFTY"]
