"""The names of a fleet's streams: one per account with tokens, one per underlying's index.

Leases, statuses and the assignment are keyed by them. Also the value of a stream's
standby marker (``Keys.stream_standby``), which the stream writes and the control plane
and ``/health`` read.
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
