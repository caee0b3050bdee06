"""The API process's tick subscriptions for live chain pages, one per watched underlying
(``tickfleet.chain.fanout``).

The lifespan owns them: an async Redis client per subscription, named ``api/chain`` in
``CLIENT LIST``, the failure log their failures go to (as ``chain_fanout`` in ``/health``
and ``task_failures_total``), and the fan-out itself; all are closed on the way out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from producers.api.public import public_status
from tickfleet.chain.fanout import FanoutConfig, TickFanout
from tickfleet.control.reload import ReloadCoordinator
from tickfleet.health.document import health_document
from tickfleet.runtime.connections import fail_fast_async_client
from tickfleet.supervision.failures import AsyncFailureLog
from tickfleet.supervision.monitor import TaskMonitor, process_context
from tickfleet.ticks.subscription import AsyncTickListener
from tickfleet.wiring.services import Services

FANOUT_TASK = "chain_fanout"


@asynccontextmanager
async def open_fanout(
    services: Services, coordinator: ReloadCoordinator
) -> AsyncIterator[TickFanout]:
    settings = services.settings
    timeout = settings.redis_socket_timeout
    records = fail_fast_async_client(settings.redis_url, timeout, name="api/failures")
    failures = AsyncFailureLog(records, services.keys.task_failures)
    monitor = TaskMonitor(process_context(role="api"), services.metrics, failures, services.clock)
    writer = asyncio.get_running_loop().create_task(failures.run(), name="api/failures")
    fanout = TickFanout(
        lambda: AsyncTickListener.open(settings.effective_publish_redis_url, timeout, "api/chain"),
        lambda: public_status(health_document(services.health_sources(), coordinator)),
        lambda exc: monitor.report(FANOUT_TASK, exc),
        FanoutConfig(
            frame_seconds=settings.chain_frame_seconds,
            idle_seconds=settings.chain_idle_seconds,
            max_watchers=settings.chain_max_watchers,
        ),
    )
    try:
        yield fanout
    finally:
        await fanout.aclose()
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        await failures.flush()
        await records.aclose()
