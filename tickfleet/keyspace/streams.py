"""The names of a fleet's streams: one per account with tokens, one per underlying's index.

Leases, statuses and the assignment are keyed by them.
"""

from __future__ import annotations

_ACCOUNT = "account:"
_UNDERLYING = "underlying:"


def account_stream(account_id: str) -> str:
    """Stream name of one account's option feed (leases and status are keyed by it)."""
    return f"{_ACCOUNT}{account_id}"


def underlying_stream(underlying: str) -> str:
    """Stream name of one underlying's index feed (``underlying:NIFTY``)."""
    return f"{_UNDERLYING}{underlying}"


def stream_account(stream: str) -> str | None:
    """The account id of an account stream name, None for an underlying's stream."""
    return stream.removeprefix(_ACCOUNT) if stream.startswith(_ACCOUNT) else None


def stream_underlying(stream: str) -> str | None:
    """The underlying of an underlying's stream name, None for an account's stream."""
    return stream.removeprefix(_UNDERLYING) if stream.startswith(_UNDERLYING) else None
