"""Flower for the fleet: on loopback by default, never outside it without a real password.

Flower listens on every interface unless told otherwise, and whoever reaches it can shut
workers down or revoke their tasks. This guard runs inside ``celery -A workers flower``
however Flower was configured (flags, ``FLOWER_*`` variables, ``flowerconfig.py``):
Flower imports the app's modules (the ``import_modules`` signal) after it has read its
options and before it binds its port. There, an unset address becomes 127.0.0.1, and an
address outside loopback without a real password (``tickfleet.config.exposure``) ends Flower
with the reason, before anything listens.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click
from celery.signals import import_modules

from tickfleet.config.exposure import flower_refusal

log = logging.getLogger("tickfleet.flower")

LOOPBACK = "127.0.0.1"


def guard(options: Any) -> None:
    """Bind ``options`` (Flower's parsed tornado options) to loopback, or refuse them."""
    if options.unix_socket:
        return  # a file, not a port: its permissions guard it
    if not options.address:
        options.address = LOOPBACK
        log.info("Flower listens on %s (set FLOWER_ADDRESS to change)", LOOPBACK)
    refusal = flower_refusal(options.address, list(options.basic_auth or []), bool(options.auth))
    if refusal is not None:
        sys.exit(f"refused: {refusal}")  # the reason on stderr, exit status 1


@import_modules.connect
def _guard_flower(sender: Any = None, **_: Any) -> None:
    """Only in Flower's process: workers and beat import the same modules."""
    context = click.get_current_context(silent=True)
    if context is None or context.info_name != "flower":
        return
    from tornado.options import options  # noqa: PLC0415 (Flower's, parsed by now)

    guard(options)
