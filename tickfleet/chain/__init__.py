"""The option chain from the latest ticks, and its fan-out to live pages."""
