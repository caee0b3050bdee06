"""The control plane: bounded reloads, the rebalance, stream starts, worker presence,
the watchdog and expiry eviction (what the control and maintenance queues run)."""
