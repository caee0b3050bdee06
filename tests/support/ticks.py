"""A consumer that records every tick published on the fleet's channels (test side)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from redis.exceptions import RedisClusterException

from tests.support.polling import wait_until
from tickfleet.config.settings import Settings
from tickfleet.ticks.channels import Channels
from tickfleet.ticks.subscription import NOT_A_TICK, TickListener


@dataclass
class Received:
    at: float
    channel: str
    tick: dict[str, Any]
    raw: bytes = b""  # the payload as heard


@dataclass
class TickCollector:
    """Subscribes in a thread; ``stop`` ends it. Thread-safe reads through ``snapshot``.

    ``url`` may name a plain Redis or any node of a Redis Cluster: the collector asks (as
    the fleet does) and listens to the channels of the underlying ``name`` as published there.
    """

    url: str
    name: str = "NIFTY"  # the underlying whose ticks it hears
    root: str = "ticker"
    _ticks: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _subscribed: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    channels: Channels = field(init=False)

    def __post_init__(self) -> None:
        self.channels = Channels.for_underlying(self.root, self.name)

    def start(self) -> TickCollector:
        """Listen from a thread (subscribed when this returns); a lost connection (Redis
        restarted) is re-made at once."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._subscribed.wait(10):
            raise TimeoutError(f"could not subscribe to {self.url}")
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                listener = TickListener.open(self.url, timeout=1)
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.02)
                continue
            try:
                self.channels = listener.channels(self.root, self.name)
                listener.subscribe(self.channels.options, self.channels.underlying)
                self._subscribed.set()
                self._listen(listener)
            except (redis.ConnectionError, redis.TimeoutError, RedisClusterException):
                time.sleep(0.02)
            finally:
                listener.close()

    def _listen(self, listener: TickListener) -> None:
        while not self._stop.is_set():
            heard = listener.get(timeout=0.2)
            if heard is not None and heard is not NOT_A_TICK:
                received = Received(time.time(), heard[0], orjson.loads(heard[1]), heard[1])
                with self._lock:
                    self._ticks.append(received)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def snapshot(self, since: float = 0.0) -> list[Received]:
        with self._lock:
            return [r for r in self._ticks if r.at >= since]

    def options(self, since: float = 0.0) -> list[dict[str, Any]]:
        return [r.tick for r in self.snapshot(since) if r.channel == self.channels.options]

    def underlying(self, since: float = 0.0) -> list[dict[str, Any]]:
        return [r.tick for r in self.snapshot(since) if r.channel == self.channels.underlying]

    def wait_for(self, predicate: Any, timeout: float, what: str) -> float:
        """Poll until ``predicate(self)`` holds; returns the seconds it took."""
        return wait_until(lambda: predicate(self), timeout, 0.05, what)


def check_option_tick(tick: dict[str, Any], *, strict: bool = True) -> None:
    """What every published option tick must satisfy.

    ``strict`` bounds deltas away from 0 and ±1; only contracts far from the money in
    their last day may round to those limits, and callers pricing such contracts relax it.
    """
    assert tick["is_mock"] is True
    assert tick["last_price"] > 0
    assert tick["gamma"] >= 0 and tick["vega"] >= 0
    assert 0 < tick["iv"] < 2
    for name in ("delta", "gamma", "theta", "vega", "iv", "last_price"):
        assert math.isfinite(tick[name]), name
    low, high = (0, 1) if tick["instrument_type"] == "CE" else (-1, 0)
    if strict:
        assert low < tick["delta"] < high
    else:
        assert low <= tick["delta"] <= high
    for name in (
        "instrument_token",
        "tradingsymbol",
        "strike",
        "expiry",
        "volume",
        "oi",
        "theta",
        "timestamp",
    ):
        assert name in tick


@contextmanager
def collecting(
    settings: Settings, underlyings: Iterable[str]
) -> Iterator[dict[str, TickCollector]]:
    """One started collector per underlying, on its channels; all stopped on leaving."""
    collectors: dict[str, TickCollector] = {}
    try:
        for name in underlyings:
            url = settings.effective_publish_redis_url
            collectors[name] = TickCollector(url, name, settings.channel_root).start()
        yield collectors
    finally:
        for collector in collectors.values():
            collector.stop()
