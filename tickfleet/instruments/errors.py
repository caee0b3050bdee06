"""Errors of the instrument registry, one base class so callers can catch them together."""

from __future__ import annotations


class InstrumentError(Exception):
    """Any failure to obtain or read the list of tradable instruments.

    ``remedy``, when the raiser knows one, says what an operator can do about it (the
    setting to check, the source to use instead), for the command line to show.
    """

    remedy: str | None = None


class InstrumentDumpError(InstrumentError):
    """An instruments dump that cannot be read, located to its line and column.

    A refresh that silently skipped bad rows would quietly drop contracts that users
    subscribe to, so the whole dump is rejected and the operator told where it broke.
    """

    def __init__(self, line: int, column: str | None, problem: str) -> None:
        where = f"line {line}" if column is None else f"line {line}, column {column!r}"
        super().__init__(f"instruments dump {where}: {problem}")
        self.line = line
        self.column = column
        self.problem = problem


class InstrumentSourceError(InstrumentError):
    """A source could not deliver its dump (network failure, refused credentials, ...).

    The message names the source and says why, in one line."""

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.remedy = remedy
