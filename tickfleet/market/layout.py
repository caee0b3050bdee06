"""The array layout of an option chain: one row per contract, built once per contract set.

Building it costs a Python pass over the contracts; pricing with it costs none. The
book rebuilds it only when its contract set changes and carries per-row state (volume,
open interest) across rebuilds by token.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from tickfleet.market.contracts import OptionContract

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
Rows = NDArray[np.intp]
_Key = TypeVar("_Key", bound=Hashable)


@dataclass(frozen=True, slots=True)
class ChainLayout:
    """Row-aligned arrays of a fixed set of contracts.

    ``expiry_rows`` maps each row to ``expiries``; ``pair_rows`` maps each row to its
    (expiry, strike) pair, which a call and its put share.
    """

    contracts: tuple[OptionContract, ...]
    tokens: tuple[int, ...]
    row_of: Mapping[int, int]
    strikes: FloatArray
    is_call: NDArray[np.bool_]
    expiries: tuple[date, ...]
    expiry_rows: Rows
    pair_rows: Rows
    pair_count: int
    lot_sizes: IntArray  # 0 where the contract names none

    @classmethod
    def build(cls, contracts: Iterable[OptionContract]) -> ChainLayout:
        held = tuple(contracts)
        tokens = tuple(c.instrument_token for c in held)
        strikes = np.array([c.strike for c in held], dtype=np.float64)
        expiries, expiry_rows = _codes([c.expiry for c in held])
        pairs, pair_rows = _codes([(c.expiry, c.strike) for c in held])
        return cls(
            contracts=held,
            tokens=tokens,
            row_of={token: row for row, token in enumerate(tokens)},
            strikes=strikes,
            is_call=np.array([c.is_call for c in held], dtype=np.bool_),
            expiries=tuple(expiries),
            expiry_rows=expiry_rows,
            pair_rows=pair_rows,
            pair_count=len(pairs),
            lot_sizes=np.array([c.lot_size or 0 for c in held], dtype=np.int64),
        )

    def carry(self, previous: ChainLayout, values: IntArray, fill: int) -> IntArray:
        """Per-row ``values`` of ``previous`` re-aligned to this layout; new rows get ``fill``."""
        source = np.array([previous.row_of.get(t, -1) for t in self.tokens], dtype=np.intp)
        carried = np.full(len(self.tokens), fill, dtype=np.int64)
        known = source >= 0
        carried[known] = values[source[known]]
        return carried


def _codes(keys: list[_Key]) -> tuple[list[_Key], Rows]:
    """Distinct keys in first-seen order, and each key's index among them."""
    index: dict[_Key, int] = {}
    codes = [index.setdefault(key, len(index)) for key in keys]
    return list(index), np.array(codes, dtype=np.intp)
