"""The schema's history as Alembic revisions, applied by ``tickfleet init-db``.

``create_all`` only adds missing tables: it could never widen ``subscriptions.token`` on a
database that already had the table. Revisions change an existing database in place, and
the environment ships inside the package, so an installed fleet migrates without the
repository (no ``alembic.ini``: the configuration is built here, on the fleet's engine).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, MetaData, inspect

from tickfleet import instruments  # noqa: F401 - they register their tables
from tickfleet.history import bar_store  # noqa: F401 - it registers its table
from tickfleet.storage.sql import Base, MetaRow, stamp
from tickfleet.subscriptions import store as subscriptions  # noqa: F401

SCRIPTS = Path(__file__).parent
# The schema ``create_all`` made before there were migrations (tickfleet 0.3.0 and older).
BASELINE = "0001"
VERSION_TABLE = "alembic_version"


def target_metadata() -> MetaData:
    """Every table of tickfleet, as the models declare it: what ``head`` must equal."""
    return Base.metadata


def alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for this package's revisions, run on ``connection``."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


def predates_migrations(connection: Connection) -> bool:
    """A database ``create_all`` set up: tickfleet's tables without a migration version."""
    tables = set(inspect(connection).get_table_names())
    return MetaRow.__tablename__ in tables and VERSION_TABLE not in tables


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision, in one transaction where the database
    allows (PostgreSQL); a database from before migrations is first stamped at the
    baseline it matches, so only the later revisions run on it."""
    with engine.begin() as connection:
        config = alembic_config(connection)
        if predates_migrations(connection):
            command.stamp(config, BASELINE)
        command.upgrade(config, "head")


def initialise(engine: Engine, now: datetime) -> str:
    """Migrate the schema to the newest revision and stamp the database once; returns its
    id (kept on re-runs). Here, not beside the engine: migrating needs every model, and
    the models need the engine's module."""
    upgrade(engine)
    return stamp(engine, now)
