"""``tickfleet kite-sim`` and the local Kite servers (ticker and REST) it serves, which
the tests use too. They live here, not in ``tickfleet.kite``: they are doubles of
Kite, not part of the production adapter."""
