"""Broker accounts the fleet streams through, from an accounts file or the environment.

Each account holds a Kite Connect session (api key + access token) and may open a few
WebSocket connections; Kite allows three connections per api key, shared by every
account using that key, and 3000 instruments per connection. Each underlying's index
stream opens one more, with an account that has credentials: the accounts with
credentials take the underlyings in turn (``index_accounts``), so six indices on three
accounts cost each key two connections rather than one key six, which Kite would refuse.
An index connection counts against its account's api key, so an account that carries
indices defaults to the connections its key has left. Kite's REST side (instruments,
quotes, candles) uses the first account with credentials (``rest_account``).

Without an accounts file or list, ``KITE_API_KEY`` and ``KITE_ACCESS_TOKEN`` make one
account (``TICKFLEET_KITE_ACCOUNT_ID``); with neither, the fleet has one simulated
account, so a fresh machine streams a mock market at once.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError

from tickfleet.accounts.access_tokens import Credentials
from tickfleet.config.settings import Settings

T = TypeVar("T")

KITE_CONNECTIONS_PER_API_KEY = 3
SIMULATED_ACCOUNT_ID = "sim-1"


class AccountConfigError(ValueError):
    """The accounts configuration cannot be used; the message says what to fix."""


class AccountEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    account_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    api_key: str | None = None
    access_token: SecretStr | None = None
    max_connections: int | None = Field(None, gt=0, le=KITE_CONNECTIONS_PER_API_KEY)


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    api_key: str | None
    access_token: SecretStr | None
    max_connections: int

    @property
    def has_credentials(self) -> bool:
        return bool(self.api_key and self.access_token)

    @property
    def credentials(self) -> Credentials | None:
        """The configured api key and access token (a posted token may replace them)."""
        if not self.api_key or self.access_token is None:
            return None
        return Credentials(self.api_key, self.access_token, "configuration")


_ENTRIES = TypeAdapter(list[AccountEntry])


def _read_entries(settings: Settings) -> list[AccountEntry]:
    if settings.accounts_file is not None:
        source = f"accounts file {settings.accounts_file}"
        raw = _read_file(settings.accounts_file)
    elif settings.accounts:
        source, raw = "TICKFLEET_ACCOUNTS", settings.accounts
    elif settings.kite_api_key and settings.kite_access_token:
        return [
            AccountEntry(
                account_id=settings.kite_account_id,
                api_key=settings.kite_api_key,
                access_token=settings.kite_access_token,
            )
        ]
    else:
        return []
    try:
        return _ENTRIES.validate_python(json.loads(raw))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise AccountConfigError(f"{source} is not a valid accounts list: {exc}") from exc


def _read_file(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise AccountConfigError(f"cannot read accounts file {path}: {exc}") from exc


def _check(accounts: list[Account], underlyings: Sequence[str]) -> None:
    ids = Counter(a.account_id for a in accounts)
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    if duplicated:
        raise AccountConfigError(f"duplicate account ids: {', '.join(duplicated)}")
    per_key: Counter[str] = Counter()
    for account in accounts:
        if account.api_key:
            per_key[account.api_key] += account.max_connections
    indices: dict[str, list[str]] = {}
    for underlying, account in index_accounts(accounts, underlyings).items():
        if account.api_key:
            per_key[account.api_key] += 1
            indices.setdefault(account.api_key, []).append(underlying)
    over = sorted(k for k, n in per_key.items() if n > KITE_CONNECTIONS_PER_API_KEY)
    if over:
        carried = "; ".join(
            f"{k} carries the index of {', '.join(indices.get(k, ['-']))}" for k in over
        )
        raise AccountConfigError(
            f"api keys {', '.join(over)} would open more than "
            f"{KITE_CONNECTIONS_PER_API_KEY} connections ({carried}: each underlying's "
            "index stream takes one); lower max_connections or add an account"
        )


def index_accounts(accounts: Sequence[Account], underlyings: Sequence[str]) -> dict[str, Account]:
    """The account whose session each underlying's index stream uses: the accounts with
    credentials in turn, in the order configured; empty without credentials."""
    return _in_turn([a for a in accounts if a.has_credentials], underlyings)


def _in_turn(holders: Sequence[T], underlyings: Sequence[str]) -> dict[str, T]:
    """Each underlying to one of ``holders``, taking them in turn."""
    if not holders:
        return {}
    return {u: holders[i % len(holders)] for i, u in enumerate(underlyings)}


def rest_account(accounts: Sequence[Account]) -> Account | None:
    """The account whose session Kite's REST side uses: the first with credentials."""
    return next((a for a in accounts if a.has_credentials), None)


def _default_connections(entry: AccountEntry, indices: int, settings: Settings) -> int:
    """Connections of an account that names none; an account carrying ``indices`` index
    streams leaves their connections free on its key."""
    if entry.max_connections is not None:
        return entry.max_connections
    wanted = settings.connections_per_account
    if indices:
        return max(1, min(wanted, KITE_CONNECTIONS_PER_API_KEY - indices))
    return wanted


def load_accounts(settings: Settings) -> list[Account]:
    """The configured accounts, validated; one simulated account when none is configured."""
    entries = _read_entries(settings)
    if not entries:
        return [Account(SIMULATED_ACCOUNT_ID, None, None, settings.connections_per_account)]
    underlyings = settings.underlying_names
    credentialed = [e.account_id for e in entries if e.api_key and e.access_token]
    indices = Counter(_in_turn(credentialed, underlyings).values())
    accounts = [
        Account(
            account_id=e.account_id,
            api_key=e.api_key,
            access_token=e.access_token,
            max_connections=_default_connections(e, indices[e.account_id], settings),
        )
        for e in entries
    ]
    _check(accounts, underlyings)
    return accounts


def find_account(settings: Settings, account_id: str) -> Account | None:
    """One configured account, read afresh (the accounts file may have changed)."""
    return next((a for a in load_accounts(settings) if a.account_id == account_id), None)
