"""What every long-running process stands on: clocks, Redis clients, owner-token leases,
start-up waits and the garbage collector's tuning."""
