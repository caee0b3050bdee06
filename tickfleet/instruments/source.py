"""Where the instrument list comes from: a CSV file, Kite's dump, or the offline universe.

Each source only fetches; storing is the registry's job, so a refresh can be tested with
any source and the registry with any list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from datetime import date
from pathlib import Path
from typing import Protocol

from tickfleet.accounts.access_tokens import Credentials
from tickfleet.config.settings import Settings
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

FLEET_UNDERLYINGS = ("NIFTY",)
KITE_DERIVATIVES_EXCHANGE = "NFO"
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
    """The indices and NFO futures and options of ``underlyings`` (None keeps everything).

    A full Kite dump lists some hundred thousand instruments across exchanges; the fleet
    only streams the chains of a few indices.
    """
    if underlyings is None:
        return list(instruments)
    return [item for item in instruments if _streamable(item, underlyings)]


def _streamable(item: Instrument, underlyings: Collection[str]) -> bool:
    if item.underlying not in underlyings:
        return False
    nfo_derivative = (
        item.exchange == KITE_DERIVATIVES_EXCHANGE and item.instrument_type in DERIVATIVE_TYPES
    )
    return item.is_index or nfo_derivative


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
        timeout: float = 30.0,
        underlyings: Collection[str] | None = FLEET_UNDERLYINGS,
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


SpotProvider = Callable[[], float]


class OfflineUniverseSource:
    """The generated NIFTY universe, for running without broker credentials.

    ``spot`` may supply the current simulated index level so that strikes centre on
    it; by default they centre on the spec's configured price.
    """

    def __init__(self, spec: UniverseSpec, spot: SpotProvider | None = None) -> None:
        self.spec = spec
        self._spot = spot
        self.name = "offline universe"

    def fetch(self, today: date) -> list[Instrument]:
        spot = self._spot() if self._spot is not None else self.spec.spot
        return generate_universe(today, spot, self.spec)


def choose_source(settings: Settings, kite: Credentials | None) -> InstrumentSource:
    """A configured CSV file first, then Kite with ``kite``'s session, else offline."""
    if settings.instruments_csv is not None:
        return CsvFileSource(settings.instruments_csv)
    if kite is not None:
        return KiteDumpSource(settings.kite_api_url, kite)
    return OfflineUniverseSource(UniverseSpec.from_settings(settings))
