"""The live feed: Kite Connect sessions, options and the index."""
