"""Stream tasks: long-running per-account and underlying feeds (see tickfleet.stream)."""
