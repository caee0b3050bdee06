"""Long-running streams, one per account plus the underlying: supervised coroutines."""
