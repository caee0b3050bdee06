"""The local Kite ticker server, where tests have always imported it from.

It lives in ``producers.kite_sim.local_server`` because ``tickfleet kite-sim`` serves it too,
and the package must not import from the tests.
"""

from producers.kite_sim.local_server import (
    DEFAULT_CREDENTIALS,
    MALFORMED,
    AccessTokens,
    ClientState,
    KiteServer,
    TextKind,
)

__all__ = [
    "DEFAULT_CREDENTIALS",
    "MALFORMED",
    "AccessTokens",
    "ClientState",
    "KiteServer",
    "TextKind",
]
