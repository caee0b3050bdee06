"""Historical candles from Kite, asked through the fleet's own accounts.

Kite's historical API is a paid add-on, answers at most three requests a second per api
key, and caps each request's range by interval. So a fetch asks through the account it
is told to, or through every account with a valid session in turn: one whose token Kite
refuses (403), that is rate-limited (429), failing (5xx) or silent (a timeout) hands over
to the next, and each failure is kept with the answer and logged. Before every request
the api key's slot is taken from the fleet-wide limiter (``ratelimit``), so that API
processes together stay under Kite's rate. A range over the interval's cap is refused
before anything is asked; it is not split, so one fetch is at most one request per
account. Candles of a range that has closed cannot change, so they are kept in Redis
for a while and a second fetch asks nobody.

Synchronous, like the official client: code on an event loop calls ``fetch`` in a thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Self
from zoneinfo import ZoneInfo

import orjson
import redis
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_none

from tickfleet.accounts.access_tokens import Credentials, rest_credentials
from tickfleet.accounts.config import Account, load_accounts
from tickfleet.config.settings import Settings
from tickfleet.history.ratelimit import RateLimiter, RateLimitTimeoutError
from tickfleet.keyspace.keys import Keys
from tickfleet.kite.candles import Candle, CandleError, CandleQuery
from tickfleet.kite.rest import (
    KiteRestClient,
    KiteRestError,
    KiteSessionRefused,
    KiteUnavailable,
)
from tickfleet.runtime.clock import Clock, clock_from_settings

log = logging.getLogger(__name__)

DEFAULT_CACHE_TTL: Final = 86_400.0
"""Seconds a closed range's candles are kept: long enough for a day's repeated charts,
short enough that Kite's rare corrections arrive by the next day."""
DEFAULT_REQUEST_TIMEOUT: Final = 10.0
"""Seconds one account's request may take before the next account is asked."""
DEFAULT_SLOT_TIMEOUT: Final = 5.0
"""Longest wait for an api key's rate-limit slot before the next account is asked."""
_NO_SESSION: Final = "no valid session (no access token, or Kite refused it)"


class HistoryError(Exception):
    """Candles could not be had; the subclass says why."""


class UnknownAccountError(HistoryError, LookupError):
    """The fetch named an account the fleet does not have."""


class KiteUnavailableError(HistoryError):
    """No account got an answer from Kite; ``failures`` says why, account by account."""

    def __init__(self, query: CandleQuery, failures: Sequence[AccountFailure]) -> None:
        self.failures = tuple(failures)
        reasons = "; ".join(f"{f.account_id}: {f.reason}" for f in self.failures)
        super().__init__(
            f"Kite could not serve {query.interval.value} candles of {query.token} "
            f"through any account ({reasons or 'no accounts'})"
        )


class KiteRejectedError(HistoryError):
    """Kite refused the request itself (a bad token or parameter): another account
    would be refused the same."""


@dataclass(frozen=True, slots=True)
class AccountFailure:
    """Why one account got no candles: logged, and kept with the answer."""

    account_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class History:
    """A fetch's answer: the candles, the account Kite answered through (None when they
    came from the cache), and the accounts that failed before it."""

    candles: tuple[Candle, ...]
    account_id: str | None
    failures: tuple[AccountFailure, ...] = ()

    @property
    def cached(self) -> bool:
        return self.account_id is None


@dataclass(frozen=True, slots=True)
class KiteAccess:
    """Where Kite is and how long to give it."""

    root: str
    tz: ZoneInfo
    cache_ttl: float = DEFAULT_CACHE_TTL
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    slot_timeout: float = DEFAULT_SLOT_TIMEOUT

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings.kite_api_url, ZoneInfo(settings.market_timezone))


_Candidate = tuple[str, Credentials]


class KiteSource:
    """Candles from Kite through the fleet's accounts, rate-limited and cached fleet-wide.

    ``accounts`` is called on every fetch (an edited accounts file counts); each
    account's session is the one a stream would use (``sessions.rest_credentials``).
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        accounts: Callable[[], Sequence[Account]],
        limiter: RateLimiter,
        access: KiteAccess,
        clock: Clock,
    ) -> None:
        self._client = client
        self._keys = keys
        self._accounts = accounts
        self._limiter = limiter
        self._access = access
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis) -> Self:
        keys = Keys(settings.key_prefix)
        return cls(
            client,
            keys,
            lambda: load_accounts(settings),
            RateLimiter(client, keys, settings.history_rate_per_second),
            KiteAccess.from_settings(settings),
            clock_from_settings(settings),
        )

    def fetch(self, query: CandleQuery, account: str | None = None) -> History:
        """``query``'s candles, through ``account`` only when named, else through the
        first account with a valid session that answers.

        RangeError (RangeTooLargeError naming the limit) before anything is asked;
        UnknownAccountError for an account the fleet does not have; KiteUnavailableError
        when no account got an answer; KiteRejectedError when Kite refused the request.
        """
        query.check()
        candidates, skipped = self._candidates(account)
        closed = query.closed(self._clock.time())
        if closed:
            kept = self._cached(query)
            if kept is not None:
                return History(kept, None)
        if not candidates:
            raise KiteUnavailableError(query, skipped)
        history = self._ask(query, candidates, skipped)
        if closed:
            self._keep(query, history.candles)
        return history

    # --- accounts ------------------------------------------------------------------------

    def _candidates(self, name: str | None) -> tuple[list[_Candidate], list[AccountFailure]]:
        """The accounts to ask, in order, and those without a session to ask with."""
        accounts = list(self._accounts())
        if name is not None:
            accounts = [a for a in accounts if a.account_id == name]
            if not accounts:
                raise UnknownAccountError(f"the fleet has no account {name!r}")
        candidates: list[_Candidate] = []
        skipped: list[AccountFailure] = []
        for account in accounts:
            credentials = rest_credentials(
                self._client, self._keys, account.account_id, account.credentials
            )
            if credentials is None:
                skipped.append(AccountFailure(account.account_id, _NO_SESSION))
            else:
                candidates.append((account.account_id, credentials))
        return candidates, skipped

    # --- Kite ----------------------------------------------------------------------------

    def _ask(
        self, query: CandleQuery, candidates: list[_Candidate], skipped: list[AccountFailure]
    ) -> History:
        """Each candidate in turn until one answers (tenacity: one attempt per account)."""
        failures: list[AccountFailure] = []
        retrying = Retrying(
            stop=stop_after_attempt(len(candidates)),
            retry=retry_if_exception_type(_AccountFailedError),
            wait=wait_none(),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    account_id, credentials = candidates[attempt.retry_state.attempt_number - 1]
                    candles = self._ask_account(query, account_id, credentials, failures)
                    return History(tuple(candles), account_id, tuple(failures))
        except _AccountFailedError:
            pass
        raise KiteUnavailableError(query, [*skipped, *failures])

    def _ask_account(
        self,
        query: CandleQuery,
        account_id: str,
        credentials: Credentials,
        failures: list[AccountFailure],
    ) -> list[Candle]:
        """One account's request, after its api key's slot; a failure another account
        may not share is noted and raised as ``_AccountFailedError``."""
        try:
            with KiteRestClient(
                credentials.api_key,
                credentials.access_token.get_secret_value(),
                root=self._access.root,
                timeout=self._access.request_timeout,
            ) as kite:
                # The client is made first: Kite counts a request when it arrives, so
                # nothing but the request itself may come between the slot and the send.
                self._limiter.acquire(credentials.api_key, self._access.slot_timeout)
                return kite.historical_data(query, self._access.tz)
        except (RateLimitTimeoutError, KiteRestError) as exc:
            if isinstance(exc, KiteRestError) and not _another_may_answer(exc):
                raise KiteRejectedError(str(exc)) from None
            failure = AccountFailure(account_id, str(exc))
            failures.append(failure)
            log.warning("history: account %s failed: %s", account_id, failure.reason)
            raise _AccountFailedError(failure) from None

    # --- cache ---------------------------------------------------------------------------

    def _cache_key(self, query: CandleQuery) -> str:
        # Kite reads both ends to the second, so the key does too.
        start, end = int(query.start.timestamp()), int(query.end.timestamp())
        flags = f"c{int(query.continuous)}o{int(query.oi)}"
        return self._keys.history_candles(
            f"{query.token}:{query.interval.value}:{start}:{end}:{flags}"
        )

    def _cached(self, query: CandleQuery) -> tuple[Candle, ...] | None:
        raw = self._client.get(self._cache_key(query))
        if raw is None:
            return None
        try:
            return tuple(Candle.from_row(row, self._access.tz) for row in orjson.loads(raw))
        except (orjson.JSONDecodeError, CandleError, TypeError) as exc:
            log.warning("history: cached candles unreadable, asking Kite again: %s", exc)
            return None

    def _keep(self, query: CandleQuery, candles: Sequence[Candle]) -> None:
        document = orjson.dumps([candle.to_row() for candle in candles])
        ttl = max(1, round(self._access.cache_ttl))
        self._client.set(self._cache_key(query), document, ex=ttl)


class _AccountFailedError(Exception):
    """One account got no candles; the next may."""

    def __init__(self, failure: AccountFailure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _another_may_answer(exc: KiteRestError) -> bool:
    """A refused or missing session (403, also a key without the historical add-on), a
    rate limit (429), a failing or unreachable Kite: another account may fare better.
    Kite refusing the request itself (400, an unreadable answer) would recur."""
    return isinstance(exc, KiteSessionRefused | KiteUnavailable) or exc.status == 403
