"""The domain objects of one worker process, built lazily and rebuilt after fork."""

from __future__ import annotations

from functools import lru_cache

from tickfleet.config.settings import get_settings
from tickfleet.wiring.services import Services
from workers.app import app
from workers.enqueue import CeleryReloadScheduler, CeleryStreamStarter


@lru_cache(maxsize=1)
def services() -> Services:
    built = Services(get_settings())
    built.flusher.start()
    return built


def reload_scheduler() -> CeleryReloadScheduler:
    return CeleryReloadScheduler(app)


def stream_starter() -> CeleryStreamStarter:
    return CeleryStreamStarter(app, services().settings.stream_start_grace_seconds)


def reset() -> None:
    """Drop this process's objects (after fork, and at process shutdown)."""
    if services.cache_info().currsize:
        services().close()
    services.cache_clear()
