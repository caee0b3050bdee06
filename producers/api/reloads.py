"""Requesting a reload from a route: the answer says what happened, failures included."""

from __future__ import annotations

import logging

from producers.api.schemas import ReloadInfo
from tickfleet.control.reload import ReloadCoordinator

log = logging.getLogger("tickfleet.api")


def request_reload(coordinator: ReloadCoordinator, reason: str) -> ReloadInfo:
    """Request a reload; a broker/Redis failure is reported, not raised.

    The change itself is already committed; the watchdog sees a subscription that
    changed after the last reload started and requests one (``tickfleet.watchdog``), so
    nothing is lost.
    """
    try:
        request = coordinator.request(reason)
    except Exception as exc:
        log.warning("reload request (%s) failed: %s", reason, exc)
        return ReloadInfo(requested=False, error=f"{type(exc).__name__}: {exc}")
    return ReloadInfo(requested=True, scheduled=request.scheduled, generation=request.generation)
