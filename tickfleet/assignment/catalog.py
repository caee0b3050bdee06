"""The registry rows of every assigned token, kept in Redis by the reload for the streams.

A stream reads only Redis: pricing an option (type, strike, expiry) and building its
tick (trading symbol, segment, lot size) need the registry's row, and a SQL query on a
stream's event loop would stall every tick (or need a thread). The reload reads those
rows anyway; it writes them into one hash before it saves the assignment that names the
tokens, so a stream applying an assignment always finds what it needs.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import date
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from tickfleet.instruments.model import INSTRUMENT_FIELDS, Instrument

_EXPIRY = INSTRUMENT_FIELDS.index("expiry")
_CHUNK = 2000


def _encode(instrument: Instrument) -> bytes:
    values: list[Any] = [getattr(instrument, name) for name in INSTRUMENT_FIELDS]
    values[_EXPIRY] = instrument.expiry.isoformat() if instrument.expiry else None
    return orjson.dumps(values)


def _decode(raw: bytes | str) -> Instrument:
    values = orjson.loads(raw)
    expiry = values[_EXPIRY]
    values[_EXPIRY] = date.fromisoformat(expiry) if expiry else None
    return Instrument(*values)


def save_catalog(client: redis.Redis, key: str, instruments: Iterable[Instrument]) -> None:
    """Replace the catalog with ``instruments`` in one transaction (readers see old or new)."""
    encoded = {str(i.instrument_token): _encode(i) for i in instruments}
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    items = list(encoded.items())
    for start in range(0, len(items), _CHUNK):
        pipe.hset(key, mapping=dict(items[start : start + _CHUNK]))
    pipe.execute()


async def read_catalog(
    client: aioredis.Redis, key: str, tokens: Collection[int]
) -> dict[int, Instrument]:
    """The catalogued rows of ``tokens``; tokens the catalog does not hold are absent."""
    wanted = sorted(tokens)
    if not wanted:
        return {}
    raw = await client.hmget(key, [str(t) for t in wanted])
    return {t: _decode(r) for t, r in zip(wanted, raw, strict=True) if r is not None}
