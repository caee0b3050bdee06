"""Where the instrument list comes from: a CSV file, Kite's dump, or the offline universe.

Each source only fetches; storing is the registry's job, so a refresh can be tested with
any source and the registry with any list.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from datetime import date
from pathlib import Path
from typing import Protocol

import httpx
import orjson

from tickfleet.instruments.csv_dump import parse_dump, read_dump
from tickfleet.instruments.errors import InstrumentSourceError
from tickfleet.instruments.model import DERIVATIVE_TYPES, Instrument
from tickfleet.instruments.universe import UniverseSpec, generate_universe
from tickfleet.settings import Settings

FLEET_UNDERLYINGS = ("NIFTY",)
KITE_DERIVATIVES_EXCHANGE = "NFO"


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
        return select_underlyings(read_dump(self.path), self.underlyings)


def _kite_error_message(response: httpx.Response) -> str:
    """Kite explains refusals in a JSON ``message``; anything else is quoted briefly."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return f"{body.get('error_type', 'error')}: {body['message']}"
    return response.text[:200]


class KiteDumpSource:
    """Kite Connect's daily instruments dump, downloaded with the account's credentials."""

    def __init__(
        self,
        url: str,
        api_key: str,
        access_token: str,
        timeout: float = 30.0,
        underlyings: Collection[str] | None = FLEET_UNDERLYINGS,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.underlyings = underlyings
        self.name = f"kite dump {url}"
        self._headers = {
            "X-Kite-Version": "3",
            "Authorization": f"token {api_key}:{access_token}",
        }

    def fetch(self, today: date) -> list[Instrument]:
        return select_underlyings(parse_dump(self._download()), self.underlyings)

    def _download(self) -> str:
        try:
            response = httpx.get(
                self.url, headers=self._headers, timeout=self.timeout, follow_redirects=True
            )
        except httpx.HTTPError as exc:
            raise InstrumentSourceError(f"{self.name}: download failed: {exc!r}") from exc
        if response.status_code != httpx.codes.OK:
            raise InstrumentSourceError(
                f"{self.name}: HTTP {response.status_code}: {_kite_error_message(response)}"
            )
        return response.text


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


def choose_source(settings: Settings) -> InstrumentSource:
    """A configured CSV file first, then Kite when credentials exist, else offline."""
    if settings.instruments_csv is not None:
        return CsvFileSource(settings.instruments_csv)
    if settings.kite_api_key and settings.kite_access_token:
        return KiteDumpSource(
            f"{settings.kite_api_url.rstrip('/')}/instruments",
            settings.kite_api_key,
            settings.kite_access_token.get_secret_value(),
        )
    return OfflineUniverseSource(UniverseSpec.from_settings(settings))
