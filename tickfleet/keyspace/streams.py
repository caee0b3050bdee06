"""The names of a fleet's streams: one per account with tokens, and the underlying's.

Leases, statuses and the assignment are keyed by them. Also the value of a stream's
standby marker (``Keys.stream_standby``), which the stream writes and the control plane
and ``/health`` read.
"""

from __future__ import annotations

UNDERLYING_STREAM = "underlying"


def account_stream(account_id: str) -> str:
    """Stream name of one account's option feed (leases and status are keyed by it)."""
    return f"account:{account_id}"


def stream_account(stream: str) -> str | None:
    """The account id of an account stream name, None for the underlying stream."""
    return stream.removeprefix("account:") if stream.startswith("account:") else None


STAND_DOWN = "-"  # a standby marker value no standby has: whoever stands by there ends


def standby_marker(hostname: str, owner: str) -> str:
    """The standby marker's value: the standby's worker hostname, then its owner token."""
    return f"{hostname} {owner}"


def standby_host(raw: bytes | str | None) -> str | None:
    """The worker hostname a standby marker names (None: no standby, or standing down)."""
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    return text.split(" ", 1)[0] if " " in text else None
