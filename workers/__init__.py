"""Everything that runs inside celery worker and beat processes: thin task adapters.

``celery -A workers ...`` finds the application here.
"""

from workers.app import app

__all__ = ["app"]
