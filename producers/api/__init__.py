"""The REST API: ``uvicorn producers.api:app``."""

from producers.api.main import app, create_app

__all__ = ["app", "create_app"]
