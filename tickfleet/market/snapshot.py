"""The simulated underlying: immutable versioned snapshots, their single writer, their home.

The predecessor mutated one shared state object from several tasks, so readers could
see a price from one tick next to a high from another. Here the writer (the underlying
stream) keeps its mutable state in ``UnderlyingBuilder`` which nobody else touches, and
hands out frozen ``MockUnderlyingSnapshot`` values. Readers, the option streams on any
host, get them from ``RedisSnapshotStore``, which keeps the snapshot as one JSON value
that only a newer version may replace: a read returns one whole snapshot, lock-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import redis.asyncio as aioredis

if TYPE_CHECKING:
    from tickfleet.config.settings import Settings

# Annualised volatility is quoted over trading time: ~252 sessions of 6h15m. Scaling
# each tick to that clock makes a simulated second move the index like a real one does.
TRADING_SECONDS_PER_YEAR = 252 * 6.25 * 3600.0


@dataclass(frozen=True, slots=True)
class MockUnderlyingSnapshot:
    """One state of the simulated index. ``close`` is the previous session's close."""

    version: int
    symbol: str
    price: float
    open: float
    high: float
    low: float
    close: float
    volume: int
    ts: float
    is_mock: bool = True

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, raw: bytes | str) -> MockUnderlyingSnapshot:
        data: dict[str, Any] = orjson.loads(raw)
        return cls(
            version=int(data["version"]),
            symbol=str(data["symbol"]),
            price=float(data["price"]),
            open=float(data["open"]),
            high=float(data["high"]),
            low=float(data["low"]),
            close=float(data["close"]),
            volume=int(data["volume"]),
            ts=float(data["ts"]),
            is_mock=bool(data.get("is_mock", True)),
        )


@dataclass(frozen=True, slots=True)
class WalkSpec:
    """Parameters of the random walk; ``volatility`` is annualised."""

    symbol: str = "NIFTY 50"
    volatility: float = 0.14
    tick_seconds: float = 1.0
    tz: str = "Asia/Kolkata"
    volume_per_tick: float = 25_000.0

    @classmethod
    def from_settings(cls, settings: Settings, symbol: str = "NIFTY 50") -> WalkSpec:
        return cls(
            symbol=symbol,
            volatility=settings.mock_volatility,
            tick_seconds=settings.mock_tick_interval_seconds,
            tz=settings.market_timezone,
        )

    @property
    def step_sigma(self) -> float:
        """Standard deviation of one tick's log return."""
        return self.volatility * math.sqrt(self.tick_seconds / TRADING_SECONDS_PER_YEAR)


class UnderlyingBuilder:
    """The walk's mutable state. Only its single writer may call ``next``.

    Each step is a driftless geometric random walk (zero expected price change), so
    the simulated index neither trends nor goes negative however long it runs.
    """

    def __init__(
        self, spec: WalkSpec, price: float, *, close: float | None = None, version: int = 0
    ) -> None:
        if not price > 0:
            raise ValueError("the walk needs a positive starting price")
        self._spec = spec
        self._tz = ZoneInfo(spec.tz)
        self._price = self._open = self._high = self._low = float(price)
        self._close = float(close if close is not None else price)
        self._volume = 0
        self._version = version
        self._session: date | None = None

    @classmethod
    def resume(cls, spec: WalkSpec, last: MockUnderlyingSnapshot) -> UnderlyingBuilder:
        """Continue after ``last`` (e.g. read from Redis after a failover).

        Versions go on from ``last.version`` so the store accepts the new writer's
        snapshots; a new session starts if ``last`` belongs to an earlier day.
        """
        builder = cls(spec, last.price, close=last.close, version=last.version)
        builder._open, builder._high, builder._low = last.open, last.high, last.low
        builder._volume = last.volume
        builder._session = datetime.fromtimestamp(last.ts, builder._tz).date()
        return builder

    @property
    def version(self) -> int:
        return self._version

    def next(self, now: datetime, rng: np.random.Generator) -> MockUnderlyingSnapshot:
        """Advance one tick and return the new snapshot (version + 1)."""
        session = now.astimezone(self._tz).date()
        if self._session is not None and session != self._session:
            self._start_session()
        self._session = session
        self._step(rng)
        self._version += 1
        return MockUnderlyingSnapshot(
            version=self._version,
            symbol=self._spec.symbol,
            price=self._price,
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            volume=self._volume,
            ts=now.timestamp(),
        )

    def _start_session(self) -> None:
        self._close = self._price
        self._open = self._high = self._low = self._price
        self._volume = 0

    def _step(self, rng: np.random.Generator) -> None:
        sigma = self._spec.step_sigma
        self._price *= math.exp(sigma * float(rng.standard_normal()) - 0.5 * sigma * sigma)
        self._high = max(self._high, self._price)
        self._low = min(self._low, self._price)
        self._volume += int(rng.poisson(self._spec.volume_per_tick))


_WRITE_IF_NEWER = """
local snapshot_key = KEYS[1]
local version, snapshot = tonumber(ARGV[1]), ARGV[2]
local stored = redis.call('GET', snapshot_key)
if stored then
  local ok, decoded = pcall(cjson.decode, stored)
  if ok and type(decoded) == 'table' then
    local stored_version = tonumber(decoded['version'])
    if stored_version and stored_version >= version then
      return 0
    end
  end
end
redis.call('SET', snapshot_key, snapshot)
return 1
"""


class RedisSnapshotStore:
    """The latest snapshot as one Redis value that only a higher version replaces.

    The version check and the write run in one Lua script, so two writers racing
    (e.g. an old stream that has not yet noticed it lost its lease) can never move the
    stored version backwards, and a reader's GET returns one whole value.
    """

    def __init__(self, client: aioredis.Redis, key: str) -> None:
        self._client = client
        self._key = key
        self._write: Any = client.register_script(_WRITE_IF_NEWER)

    async def write(self, snapshot: MockUnderlyingSnapshot) -> bool:
        """Store ``snapshot``; False when the stored version was already as new."""
        stored = await self._write(keys=[self._key], args=[snapshot.version, snapshot.to_json()])
        return bool(stored)

    async def read(self) -> MockUnderlyingSnapshot | None:
        raw = await self._client.get(self._key)
        if raw is None:
            return None
        return MockUnderlyingSnapshot.from_json(raw)
