"""Stream tasks: long-running feeds, one per account plus one per underlying's index.

Acknowledged early and never redelivered by the broker: a stream's exclusivity comes
from its Redis lease, and a stream that dies is restarted by the watchdog within
seconds. Each task runs one asyncio loop until the stream stops or fails; the stream
opens and closes its own clients, so the task hands it settings, never connections.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from tickfleet.accounts.config import find_account, load_accounts
from tickfleet.config.settings import get_settings
from tickfleet.keyspace.tasks import TASK_STREAM_ACCOUNT, TASK_STREAM_UNDERLYING
from tickfleet.runtime.clock import clock_from_settings
from tickfleet.runtime.heap import tune_for_streaming
from tickfleet.stream.runner import StreamRunner
from tickfleet.wiring.stream import build_account_stream, build_underlying_stream
from workers.app import app

STREAM_TASK_OPTIONS: dict[str, Any] = {
    "bind": True,
    "acks_late": False,
    "reject_on_worker_lost": False,
    "ignore_result": True,
}


def _run(runner: StreamRunner) -> str:
    """Run a stream in this pool process; SIGTERM/SIGINT stop it cleanly (lease released)."""
    tune_for_streaming()

    async def main() -> str:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runner.stop)
        return await runner.run()

    return asyncio.run(main())


@app.task(name=TASK_STREAM_ACCOUNT, **STREAM_TASK_OPTIONS)
def stream_account(self: Any, account_id: str) -> str:
    settings = get_settings()
    account = find_account(settings, account_id)
    if account is None:
        return f"account {account_id} is not configured"
    clock = clock_from_settings(settings)
    return _run(build_account_stream(settings, account, str(self.request.hostname), clock))


@app.task(name=TASK_STREAM_UNDERLYING, **STREAM_TASK_OPTIONS)
def stream_underlying(self: Any, underlying: str) -> str:
    settings = get_settings()
    if underlying not in settings.underlying_names:
        return f"underlying {underlying} is not configured"
    clock = clock_from_settings(settings)
    accounts = load_accounts(settings)
    hostname = str(self.request.hostname)
    return _run(build_underlying_stream(settings, underlying, accounts, hostname, clock))
