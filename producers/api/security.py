"""Where the API may answer at all: loopback, or anywhere once it has a real key.

Without ``TICKFLEET_API_KEY`` the API is open (``producers.api.deps.is_authorised``),
which it may only be on loopback. Where it listens is checked twice. At start-up,
``API_HOST`` outside loopback without a real key refuses to start
(``refuse_exposed_start``). On every request, the address the connection actually
arrived on is checked (``refuse_exposed``), so an API started some other way (``uvicorn
--host 0.0.0.0`` with ``API_HOST`` unset, gunicorn, any ASGI server) still answers nobody
outside loopback until it has a real key.
"""

from __future__ import annotations

import functools
import ipaddress
import logging

from fastapi import Depends, HTTPException, Request, status

from tickfleet.config.exposure import api_refusal, is_loopback, weak_secret
from tickfleet.config.settings import Settings
from tickfleet.wiring.services import Services

log = logging.getLogger("tickfleet.api")


class ExposedWithoutKeyError(RuntimeError):
    """The API was told to listen outside loopback without a real key."""


def start_refusal(settings: Settings) -> str | None:
    """Why the API may not start with these settings, or None."""
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return api_refusal(settings.api_host, key)


def refuse_exposed_start(settings: Settings) -> None:
    """Raise before serving when ``API_HOST`` is outside loopback and the key is weak."""
    refusal = start_refusal(settings)
    if refusal is not None:
        log.error("refusing to start: %s", refusal)
        raise ExposedWithoutKeyError(refusal)
    if settings.api_key is None:
        log.warning(
            "the API is open: no TICKFLEET_API_KEY, so anyone who reaches %s may change "
            "subscriptions; it listens on loopback only",
            settings.api_host,
        )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _reachable_from_outside(host: str) -> bool:
    """Whether a connection that arrived on ``host`` may come from beyond this machine.
    Remembered per address: parsing it twice took a fifth of a plain POST's time on the
    event loop (``producers.api.fast_subscribe``), and a server listens on few."""
    return _is_ip(host) and not is_loopback(host)


async def refuse_exposed(request: Request) -> None:
    """Answer nobody on a non-loopback address while the key is missing or weak.

    ``scope["server"]`` is the local address the connection arrived on, as the ASGI
    server reports it: an IP literal for TCP, absent for a Unix socket. In-process test
    clients name a host ("testserver"), which no network reaches. Every request passes
    here, so it takes the request alone, not ``ServicesDep`` (a sub-dependency FastAPI
    would solve on every request).
    """
    server = request.scope.get("server")
    if not server or not _reachable_from_outside(str(server[0])):
        return
    services: Services = request.app.state.services
    key = services.settings.api_key
    why = weak_secret(key.get_secret_value() if key else None)
    if why is not None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"this API answers on loopback only: TICKFLEET_API_KEY {why}",
        )


LoopbackOrKey = Depends(refuse_exposed)
