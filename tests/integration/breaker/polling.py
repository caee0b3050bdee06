"""Bounded waiting for conditions that other threads or processes make true."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.01) -> float:
    """Poll ``condition`` until true; return the seconds it took; fail after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")
