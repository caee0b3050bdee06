"""tickfleet: the domain of the ticker fleet, free of Celery and FastAPI.

Workers (``workers/``) and producers (``producers/``) are thin adapters around it.
"""

__version__ = "0.4.0"
