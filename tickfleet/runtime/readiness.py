"""Waiting for a dependency at start-up, with jittered exponential backoff (tenacity).

Processes of a fleet start in any order (a container orchestrator, a reboot): a worker
that finds Redis or the database not yet up should wait a bounded time, logging each
attempt, instead of crashing into a restart loop. Steady-state failures are handled
where they happen (the breaker, the lease keeper), not here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

log = logging.getLogger("tickfleet.readiness")


def _log_attempt(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s not ready (attempt %d: %s); retrying in %.1fs",
            what,
            state.attempt_number,
            error,
            wait,
        )

    return before_sleep


def _policy(what: str, timeout: float, errors: tuple[type[BaseException], ...]) -> dict[str, Any]:
    return {
        "retry": retry_if_exception_type(errors),
        "stop": stop_after_delay(timeout),
        "wait": wait_exponential_jitter(multiplier=0.2, max=5.0),
        "before_sleep": _log_attempt(what),
        "reraise": True,
    }


def wait_until_ready(
    check: Callable[[], object],
    what: str,
    timeout: float = 30.0,
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> None:
    """Call ``check`` until it succeeds; re-raise its last error after ``timeout`` seconds."""
    for attempt in Retrying(**_policy(what, timeout, errors)):
        with attempt:
            check()


async def wait_until_ready_async(
    check: Callable[[], Awaitable[object]],
    what: str,
    timeout: float = 30.0,
    errors: tuple[type[BaseException], ...] = (Exception,),
) -> None:
    """``wait_until_ready`` for an event loop: the check is awaited, the waits are sleeps."""
    async for attempt in AsyncRetrying(**_policy(what, timeout, errors)):
        with attempt:
            await check()
