"""Recorded sessions for the replay's tests and bench: archive parts as the recorder writes
them, the payloads made by the fleet's own tick builders (the ones every feed uses)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from tickfleet.archive.layout import SCHEMA, market_date, partition_dir
from tickfleet.archive.parts import write_part
from tickfleet.instruments import Instrument
from tickfleet.keyspace.streams import account_stream, underlying_stream
from tickfleet.ticks.payloads import IndexQuote, OptionPayload, Stamp, index_tick

NS = 1_000_000_000
NIFTY_INDEX = ("NIFTY", "NIFTY 50", 256265)


@dataclass(frozen=True)
class Session:
    """A recorded session: every row written, in publish order (``SCHEMA`` columns)."""

    table: pa.Table

    def rows(self, kind: str | None = None, tokens: set[int] | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.table.to_pylist()
            if (kind is None or r["kind"] == kind) and (tokens is None or r["token"] in tokens)
        ]

    @property
    def span_seconds(self) -> float:
        ts = self.table["ts_ns"].to_pylist()
        return float(max(ts) - min(ts)) / NS


def record_session(
    root: Path,
    options: Sequence[Instrument],
    start: datetime,
    steps: int,
    interval: float,
    account: str = "sim-1",
    part_steps: int = 10,
    source: str = "mock",
) -> Session:
    """``steps`` chain ticks ``interval`` seconds apart from ``start``: each an index tick
    (underlying stream), then one tick per option (the account's stream), a microsecond
    apart; written as parts of ``part_steps`` steps per stream, under NIFTY."""
    payloads = {o.instrument_token: OptionPayload(o) for o in options}
    name, symbol, index_token = NIFTY_INDEX
    rows: list[dict[str, Any]] = []
    seqs = {"options": 0, "underlying": 0}
    t0 = int(start.timestamp() * NS)
    for step in range(steps):
        at = t0 + int(step * interval * NS)
        stamp = Stamp.of(at / NS, start.tzinfo)  # type: ignore[arg-type]
        level = 24000.0 + step
        quote = IndexQuote(level, 24000.0, level, 24000.0, 23990.0, step, step + 1, True)
        index = index_tick(name, symbol, index_token, quote, stamp)
        rows.append(_row(at, underlying_stream(name), seqs, "underlying",
                         "ticker:nifty:underlying", index_token, source, index))  # fmt: skip
        for i, (token, payload) in enumerate(payloads.items()):
            price = 100.0 + step + i
            tick = payload.tick(
                stamp, price, 10 * step, 1000, 0.13, 0.5, 0.01, -1.0, 2.0, step + 1, True
            )
            rows.append(_row(at + i + 1, account_stream(account), seqs, "options",
                             "ticker:nifty:options", token, source, tick))  # fmt: skip
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    _write_parts(root, rows, part_steps * (len(options) + 1), source)
    return Session(table)


def _row(
    ts_ns: int, stream: str, seqs: dict[str, int], kind: str, channel: str, token: int,
    source: str, payload: bytes,
) -> dict[str, Any]:  # fmt: skip
    seq = seqs[kind]
    seqs[kind] += 1
    return {"ts_ns": ts_ns, "stream": stream, "seq": seq, "kind": kind, "channel": channel,
            "token": token, "source": source, "payload": payload}  # fmt: skip


def _write_parts(root: Path, rows: list[dict[str, Any]], per_part: int, source: str) -> None:
    """Each stream's rows in parts of ``per_part`` rows, as one recorder per stream would."""
    by_stream: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_stream.setdefault(row["stream"], []).append(row)
    for stream, own in by_stream.items():
        for n, first in enumerate(range(0, len(own), per_part)):
            chunk = own[first : first + per_part]
            where = partition_dir(root, market_date(chunk[0]["ts_ns"]), "NIFTY")
            name = f"{stream.replace(':', '-')}-{source}-{n:05d}.parquet"
            write_part(where / name, pa.Table.from_pylist(chunk, schema=SCHEMA))
