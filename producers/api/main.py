"""Application factory. Settings and connections are made in the lifespan, not on import."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from celery import Celery
from fastapi import FastAPI

import celeryconfig
from producers.api import errors
from producers.api.fast_subscribe import fast_subscribe_route
from producers.api.live import open_fanout
from producers.api.routes import admin, chain, health, history, instruments, subscriptions
from producers.api.security import LoopbackOrKey, refuse_exposed_start
from producers.api.writes import Batches, Writes, subscribe_batch
from tickfleet import __version__
from tickfleet.config.settings import Settings, get_settings
from tickfleet.runtime.connections import fail_fast_client
from tickfleet.runtime.heap import freeze_startup
from tickfleet.storage.sql import DatabaseNotReadyError, describe
from tickfleet.wiring.services import Services
from workers.app import make_app
from workers.enqueue import CeleryReloadScheduler, CeleryStreamStarter

log = logging.getLogger("tickfleet.api")
DEFAULT_MAX_BODY: int = Settings.model_fields["api_max_body_bytes"].default


def _prepare_publishing(celery: Celery) -> None:
    """Make now what Celery makes on the first task sent: its result backend (found among
    the installed packages' entry points), its producer pool (the broker's transport
    imported) and a pooled connection with its channel. The first reload request of a
    burst paid 80-110 ms for them on a loaded machine, and every POST of the first batch
    waited (``bench/reload_burst.py``'s p99); now it pays 5. A broker that does not answer
    yet is left to that first request, as before."""
    celery.backend  # noqa: B018 - made on first read
    try:
        with celery.producer_pool.acquire(block=True) as producer:
            producer.connection.ensure_connection(max_retries=1)
            producer.connection.default_channel  # noqa: B018 - opened on first read
    except Exception as exc:
        log.warning("task broker not prepared: %s", exc)


def create_app(settings: Settings | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        chosen = settings or get_settings()
        logging.basicConfig(level=chosen.log_level)
        refuse_exposed_start(chosen)  # outside loopback without a real key: not at all
        services = Services(chosen)
        try:
            log.info("database %s (id %s)", describe(chosen.database_url), services.database_id)
        except DatabaseNotReadyError:
            services.close()
            raise  # refuse to serve a database the fleet was not set up with
        services.flusher.start()
        celery = make_app(chosen)
        celery.conf.update(celeryconfig.producer_options(chosen))  # publishes fail in time
        _prepare_publishing(celery)
        app.state.services = services
        app.state.reload_scheduler = CeleryReloadScheduler(celery)
        app.state.coordinator = services.coordinator(app.state.reload_scheduler)
        probe = fail_fast_client(chosen.redis_url, chosen.redis_socket_timeout)
        app.state.writes = Writes(probe)
        app.state.subscribes = Batches(
            app.state.writes, partial(subscribe_batch, services, app.state.coordinator)
        )
        app.state.stream_starter = CeleryStreamStarter(celery, chosen.stream_start_grace_seconds)
        app.state.celery = celery
        app.state.max_body_bytes = chosen.api_max_body_bytes
        freeze_startup()  # no full collection over start-up objects stalls a burst
        try:
            async with open_fanout(services, app.state.coordinator) as fanout:
                app.state.fanout = fanout
                yield
        finally:
            probe.close()
            services.close()

    app = FastAPI(
        title="tickfleet", version=__version__, lifespan=lifespan, dependencies=[LoopbackOrKey]
    )
    errors.install(app, lambda: int(getattr(app.state, "max_body_bytes", DEFAULT_MAX_BODY)))
    app.router.routes.append(fast_subscribe_route())  # before the route it stands in for
    app.include_router(subscriptions.router)
    app.include_router(instruments.router)
    app.include_router(admin.router)
    app.include_router(health.router)
    app.include_router(history.router)
    app.include_router(chain.router)
    return app


app = create_app()
