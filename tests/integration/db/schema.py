"""Reading a database's schema state: its migration revision and its differences from a
set of table definitions, as Alembic's autogenerate sees them."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

from tickfleet.migrations import alembic_config


def differences(engine: Engine, metadata: MetaData) -> list[Any]:
    """What a new revision would have to change for the database to equal ``metadata``."""
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))


def revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
