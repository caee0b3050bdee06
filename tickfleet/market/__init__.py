"""The simulated market: an underlying random walk and a Black-Scholes option chain.

Runs outside trading hours (or on machines without broker credentials) so that
downstream consumers see a coherent market at any time of day. The same pricing code
fills in IV and greeks for live ticks, which the broker does not send.
"""
