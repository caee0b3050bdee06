"""Stream tasks: long-running feeds, one per account plus the underlying.

Acknowledged early and never redelivered by the broker: a stream's exclusivity comes
from its Redis lease, and a stream that dies is restarted by the watchdog within
seconds. Each task runs one asyncio loop until the stream stops or fails.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from tickfleet import names
from tickfleet.readiness import wait_until_ready
from tickfleet.stream.assemble import build_account_stream, build_underlying_stream
from tickfleet.stream.runner import StreamRunner
from workers.app import app
from workers.runtime import services

STREAM_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": False,
    "reject_on_worker_lost": False,
    "ignore_result": True,
}


def _ready() -> None:
    """A stream needs the fleet Redis for its lease: wait for it briefly, then fail visibly."""
    wait_until_ready(services().redis.ping, "fleet redis", timeout=30.0)


def _run(runner: StreamRunner) -> str:
    """Run a stream in this pool process; SIGTERM/SIGINT stop it cleanly (lease released)."""

    async def main() -> str:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        return await runner.run()

    return asyncio.run(main())


@app.task(name=names.TASK_STREAM_ACCOUNT, **STREAM_TASK_OPTIONS)
def stream_account(self: Any, account_id: str) -> str:
    _ready()
    svc = services()
    account = next((a for a in svc.accounts if a.account_id == account_id), None)
    if account is None:
        return f"account {account_id} is not configured"
    svc.redis.delete(svc.keys.stream_starting(names.account_stream(account_id)))
    return _run(build_account_stream(svc, account, str(self.request.hostname)))


@app.task(name=names.TASK_STREAM_UNDERLYING, **STREAM_TASK_OPTIONS)
def stream_underlying(self: Any) -> str:
    _ready()
    svc = services()
    svc.redis.delete(svc.keys.stream_starting(names.UNDERLYING_STREAM))
    return _run(build_underlying_stream(svc, str(self.request.hostname)))
