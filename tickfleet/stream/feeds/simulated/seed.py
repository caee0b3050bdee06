"""Where the simulated index starts when nothing of the market survives: Kite's last price.

A simulated index resumes from the stored snapshot or the last tick consumers received.
When neither exists (a new Redis, a first start) and an account has a Kite session, the
index's last traded price from Kite's quote API is a better start than the configured
price: off-hours simulation then begins where the real market closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from tickfleet.accounts.access_tokens import ConfiguredCredentials, Credentials, SessionStore
from tickfleet.kite.rest import KiteRestClient, KiteRestError

log = logging.getLogger("tickfleet.stream")

QUOTE_TIMEOUT_SECONDS = 5.0

SeedPrice = Callable[[], Awaitable[float | None]]


def kite_last_price(
    store: SessionStore, configured: ConfiguredCredentials, api_url: str, key: str
) -> SeedPrice:
    """Kite's last price of ``key`` (``NSE:NIFTY 50``), or None when it cannot be had."""

    async def seed() -> float | None:
        credentials = await store.current(configured)
        if credentials is None:
            return None
        try:
            return await asyncio.to_thread(_ask, credentials, api_url, key)
        except KiteRestError as exc:
            log.warning("no start price from Kite: %s", exc)
            return None

    return seed


def no_seed() -> SeedPrice:
    """For a fleet without any Kite account."""

    async def seed() -> float | None:
        return None

    return seed


def _ask(credentials: Credentials, api_url: str, key: str) -> float | None:
    secret = credentials.access_token.get_secret_value()
    client = KiteRestClient(
        credentials.api_key, secret, root=api_url, timeout=QUOTE_TIMEOUT_SECONDS
    )
    with client:
        return client.last_prices([key]).get(key)
