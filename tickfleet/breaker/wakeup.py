"""Pub/sub listener that wakes the sync thread when another worker announces a transition."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import redis

from tickfleet.breaker.store import BreakerStore

logger = logging.getLogger("tickfleet.breaker")

POLL_SECONDS = 0.2


class ChannelWaker:
    """Turns every message on the breaker's channel into a wake of the sync thread.

    The message itself is not trusted as state: the woken sync round reads the store, so a
    lost, duplicated or reordered message cannot mislead the worker. The periodic sync
    remains the backstop for anything published while this thread was disconnected.
    """

    def __init__(
        self, store: BreakerStore, wake: Callable[[], None], retry_seconds: float, name: str
    ) -> None:
        self._store = store
        self._wake = wake
        self._retry = retry_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.warning("%s did not stop within %.1fs", self._thread.name, timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._listen()
            except (redis.RedisError, OSError) as error:
                logger.debug("%s: %r; resubscribing", self._thread.name, error)
            self._stopping.wait(self._retry)

    def _listen(self) -> None:
        pubsub = self._store.pubsub()
        try:
            pubsub.subscribe(self._store.channel)
            pubsub.get_message(timeout=POLL_SECONDS)  # the subscription's confirmation
            self._wake()  # transitions announced while unsubscribed were missed
            while not self._stopping.is_set():
                if pubsub.get_message(timeout=POLL_SECONDS) is not None:
                    self._wake()
        finally:
            pubsub.close()
