"""The simulated market: an underlying random walk and a Black-Scholes option chain.

Runs outside trading hours (or on machines without broker credentials) so that
downstream consumers see a coherent market at any time of day. The same pricing code
fills in IV and greeks for live ticks, which the broker does not send.

- ``normal``, ``blackscholes``, ``smile``, ``expiry``: pricing, vectorised over chains
- ``hours``: market hours and the feed mode (live, mock, idle) of a stream
- ``snapshot``: the underlying's versioned snapshots, their writer and their stores
- ``contracts``, ``layout``, ``options``: the bounded option book of one stream
- ``ticks``: the tick dictionaries the publisher sends
"""
