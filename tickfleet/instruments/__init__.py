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
from tickfleet.kite.tokens import (
    encode_token,
    exchange_token_of,
    segment_id_for,
    segment_id_of,
)

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
    "encode_token",
    "exchange_token_of",
    "generate_universe",
    "parse_dump",
    "read_dump",
    "refresh_instruments",
    "segment_id_for",
    "segment_id_of",
    "select_underlyings",
    "write_dump",
]
