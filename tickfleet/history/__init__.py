"""History: one-minute bars from the fleet's own ticks and their SQL store, Kite's
historical candles through the fleet's accounts (``kite_source``) behind the fleet-wide
rate limit and cache (``ratelimit``), and the service that merges both (``service``).
Candles and their limits are Kite's notions: ``tickfleet.kite.candles``."""
