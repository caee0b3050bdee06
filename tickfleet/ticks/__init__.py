"""What downstream consumers read: the tick channels and the tick payloads."""
