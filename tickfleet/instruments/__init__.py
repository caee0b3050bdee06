"""The instrument registry: what the fleet can subscribe to, and where that list comes from.

Importing the package registers the ``instruments`` table on ``tickfleet.storage.sql.Base``.
"""

from tickfleet.instruments.csv_dump import parse_dump, read_dump, write_dump
from tickfleet.instruments.errors import (
    InstrumentDumpError,
    InstrumentError,
    InstrumentSourceError,
)
from tickfleet.instruments.model import Instrument, derive_underlying
from tickfleet.instruments.refresh import refresh_instruments
from tickfleet.instruments.registry import InstrumentRegistry, RefreshSummary
from tickfleet.instruments.source import (
    CsvFileSource,
    InstrumentSource,
    KiteDumpSource,
    OfflineUniverseSource,
    choose_source,
    select_underlyings,
)
from tickfleet.instruments.table import InstrumentRow
from tickfleet.instruments.universe import UniverseSpec, generate_universe

__all__ = [
    "CsvFileSource",
    "Instrument",
    "InstrumentDumpError",
    "InstrumentError",
    "InstrumentRegistry",
    "InstrumentRow",
    "InstrumentSource",
    "InstrumentSourceError",
    "KiteDumpSource",
    "OfflineUniverseSource",
    "RefreshSummary",
    "UniverseSpec",
    "choose_source",
    "derive_underlying",
    "generate_universe",
    "parse_dump",
    "read_dump",
    "refresh_instruments",
    "select_underlyings",
    "write_dump",
]
