"""The simulated feed: the random-walk index and the Black-Scholes option chain, paced."""
