"""Long-running streams: one per account plus the underlying, each a set of supervised coroutines."""
