"""Fleet-wide metrics: recorded in process memory, flushed to Redis, read back."""
