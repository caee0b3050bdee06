"""Where the instrument list comes from: a CSV file, Kite's dump, or the offline universe.

Each source only fetches; storing is the registry's job, so a refresh can be tested with
any source and the registry with any list.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from datetime import date
from pathlib import Path
from typing import Protocol

from tickfleet.accounts.access_tokens import Credentials
from tickfleet.config.settings import Settings
from tickfleet.config.underlyings import KNOWN
from tickfleet.instruments.csv_dump import parse_dump, read_dump
from tickfleet.instruments.errors import InstrumentDumpError, InstrumentSourceError
from tickfleet.instruments.model import DERIVATIVE_TYPES, Instrument
from tickfleet.instruments.universe import UniverseSpec, generate_universe
from tickfleet.kite.rest import (
    KiteRestClient,
    KiteRestError,
    KiteSessionRefused,
    KiteUnavailable,
)

DERIVATIVES_EXCHANGES = frozenset({"NFO", "BFO"})
INSTEAD = "or set TICKFLEET_INSTRUMENTS_CSV to a saved dump"


class InstrumentSource(Protocol):
    @property
    def name(self) -> str:
        """A short description for logs (never credentials)."""
        ...

    def fetch(self, today: date) -> list[Instrument]:
        """The full current list; ``today`` matters to sources that generate contracts."""
        ...


def select_underlyings(
    instruments: Iterable[Instrument], underlyings: Collection[str] | None
) -> list[Instrument]:
    """The indices of ``underlyings`` and their futures and options on their own
    derivatives exchange, NFO or BFO (None keeps everything).

    A full Kite dump lists some hundred thousand instruments across exchanges; the fleet
    only streams the chains of the configured underlyings.
    """
    if underlyings is None:
        return list(instruments)
    return [item for item in instruments if _streamable(item, underlyings)]


def _streamable(item: Instrument, underlyings: Collection[str]) -> bool:
    if item.underlying not in underlyings:
        return False
    known = KNOWN.get(item.underlying)
    exchanges = {known.exchange} if known is not None else DERIVATIVES_EXCHANGES
    return item.is_index or (
        item.exchange in exchanges and item.instrument_type in DERIVATIVE_TYPES
    )


class CsvFileSource:
    """A dump saved to disk, e.g. for a fixed universe in tests or an air-gapped host."""

    def __init__(self, path: Path, underlyings: Collection[str] | None = None) -> None:
        self.path = path
        self.underlyings = underlyings
        self.name = f"csv file {path}"

    def fetch(self, today: date) -> list[Instrument]:
        remedy = "point TICKFLEET_INSTRUMENTS_CSV at a readable instruments dump, or unset it"
        try:
            return select_underlyings(read_dump(self.path), self.underlyings)
        except OSError as exc:
            raise InstrumentSourceError(f"{self.name}: {exc.strerror}", remedy) from None
        except InstrumentDumpError as exc:
            exc.remedy = f"fix the file, or {remedy}"
            raise


class KiteDumpSource:
    """Kite Connect's daily instruments dump, through the official client (``KITE_API_URL``).

    The whole dump, not the NFO part alone: the index itself is listed on NSE.
    """

    def __init__(
        self,
        root: str,
        credentials: Credentials,
        underlyings: Collection[str] | None,
        timeout: float = 30.0,
    ) -> None:
        self.root = root
        self.timeout = timeout
        self.underlyings = underlyings
        self.name = f"kite dump {root} ({credentials.source} token)"
        self._credentials = credentials

    def fetch(self, today: date) -> list[Instrument]:
        dump = self._download()
        try:
            return select_underlyings(parse_dump(dump), self.underlyings)
        except InstrumentDumpError as exc:
            exc.remedy = f"try again later, {INSTEAD}"
            raise

    def _download(self) -> str:
        c = self._credentials
        client = KiteRestClient(
            c.api_key, c.access_token.get_secret_value(), root=self.root, timeout=self.timeout
        )
        try:
            with client:
                return client.instruments_dump()
        except KiteRestError as exc:
            why, remedy = self._diagnose(exc)
            raise InstrumentSourceError(f"{self.name}: {why}", remedy) from None

    def _diagnose(self, exc: KiteRestError) -> tuple[str, str]:
        """Why the download failed, in a line, and what an operator can do about it."""
        if isinstance(exc, KiteSessionRefused):
            renew = "KITE_ACCESS_TOKEN, the accounts configuration or POST /admin/accounts/ID/token"
            return str(exc), f"renew the access token ({renew}), {INSTEAD}"
        if isinstance(exc, KiteUnavailable):
            return _unreachable(exc, self.timeout), f"check KITE_API_URL ({self.root}), {INSTEAD}"
        return str(exc), f"check KITE_API_URL ({self.root}) and the api key, {INSTEAD}"


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\"()\]]+)")


def _unreachable(exc: KiteUnavailable, timeout: float) -> str:
    """Kite's failure without ``requests``' paragraph: a connection failure is a line of
    its own in the error text, a timeout a name; an HTTP failure keeps Kite's words."""
    text = str(exc)
    if exc.status is not None:
        return text
    if "Timeout" in text:
        return f"Kite did not answer within {timeout:g}s"
    found = _ERRNO.search(text)
    cause = found.group(1).strip().lower() if found else "no answer"
    return f"Kite could not be reached ({cause})"


class OfflineUniverseSource:
    """The generated universe of each spec's underlying, for running without credentials;
    strikes centre on each spec's configured price."""

    def __init__(self, *specs: UniverseSpec) -> None:
        self.specs = specs
        self.name = "offline universe"

    def fetch(self, today: date) -> list[Instrument]:
        return [row for spec in self.specs for row in generate_universe(today, spec.spot, spec)]


def choose_source(settings: Settings, kite: Credentials | None) -> InstrumentSource:
    """A configured CSV file first, then Kite with ``kite``'s session, else offline; each
    keeps the configured underlyings."""
    underlyings = settings.underlying_names
    if settings.instruments_csv is not None:
        return CsvFileSource(settings.instruments_csv, underlyings)
    if kite is not None:
        return KiteDumpSource(settings.kite_api_url, kite, underlyings)
    return OfflineUniverseSource(*UniverseSpec.configured(settings))
