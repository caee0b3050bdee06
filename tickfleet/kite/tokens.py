"""Kite instrument tokens: the exchange token shifted left a byte, the segment in the low byte.

The WebSocket feed carries only the instrument token, so the segment (and with it the
price divisor) must be recoverable from the token alone.
"""

from __future__ import annotations

from types import MappingProxyType

SEGMENT_IDS = MappingProxyType(
    {
        "NSE": 1,
        "NFO": 2,
        "CDS": 3,
        "BSE": 4,
        "BFO": 5,
        "BCD": 6,
        "MCX": 7,
        "MCXSX": 8,
        "INDICES": 9,
    }
)

# Tokens travel as unsigned 32-bit integers in the binary feed.
MAX_EXCHANGE_TOKEN = (1 << 24) - 1


def encode_token(exchange_token: int, segment_id: int) -> int:
    """The instrument token of ``exchange_token`` in segment ``segment_id``."""
    if not 0 <= exchange_token <= MAX_EXCHANGE_TOKEN:
        raise ValueError(f"exchange token {exchange_token} is outside 0..{MAX_EXCHANGE_TOKEN}")
    if not 0 <= segment_id <= 0xFF:
        raise ValueError(f"segment id {segment_id} does not fit in one byte")
    return exchange_token << 8 | segment_id


def segment_id_of(instrument_token: int) -> int:
    return instrument_token & 0xFF


def exchange_token_of(instrument_token: int) -> int:
    return instrument_token >> 8


def segment_id_for(exchange: str, segment: str) -> int:
    """The segment id Kite encodes for a dump row's ``exchange`` and ``segment`` columns.

    Indices of every exchange share one id; everything else is keyed by its exchange.
    """
    key = "INDICES" if segment == "INDICES" else exchange
    try:
        return SEGMENT_IDS[key]
    except KeyError:
        raise ValueError(f"unknown exchange {exchange!r} (segment {segment!r})") from None
