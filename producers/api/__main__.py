"""``python -m producers.api``: serve the API on ``API_HOST``:``API_PORT``.

The one place the bind address is read, so the address the start-up check judges is the
address uvicorn binds. Outside loopback without a real ``TICKFLEET_API_KEY`` it exits 2
with the reason before anything listens.
"""

from __future__ import annotations

import sys

import uvicorn

from producers.api.security import start_refusal
from tickfleet.config.settings import get_settings


def main() -> int:
    settings = get_settings()
    refusal = start_refusal(settings)
    if refusal is not None:
        print(f"refused: {refusal}", file=sys.stderr)
        return 2
    uvicorn.run(
        "producers.api:app",
        host=settings.api_host,
        port=settings.api_port,
        access_log=settings.api_access_log,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
