"""The names of a fleet's streams: one per account with tokens, and the underlying's.

Leases, statuses and the assignment are keyed by them.
"""

from __future__ import annotations

UNDERLYING_STREAM = "underlying"


def account_stream(account_id: str) -> str:
    """Stream name of one account's option feed (leases and status are keyed by it)."""
    return f"account:{account_id}"


def stream_account(stream: str) -> str | None:
    """The account id of an account stream name, None for the underlying stream."""
    return stream.removeprefix("account:") if stream.startswith("account:") else None
