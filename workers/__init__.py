"""Everything that runs inside celery worker and beat processes: thin task adapters.

``celery -A workers ...`` finds the application here, and Flower its guard.
"""

import workers.flower  # noqa: F401 (connects Flower's loopback-or-password guard)
from workers.app import app

__all__ = ["app"]
