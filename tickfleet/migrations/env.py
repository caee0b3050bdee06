"""Alembic's entry point: migrates the connection ``tickfleet.migrations`` hands over.

Batch mode renders column changes so SQLite (which cannot alter a column) copies the
table, while PostgreSQL gets plain ``ALTER TABLE``.
"""

from __future__ import annotations

from alembic import context

from tickfleet.migrations import target_metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "tickfleet migrations run on a connection: use `tickfleet init-db`, or "
            "`python -m tickfleet.migrations MESSAGE` for a new revision"
        )
    context.configure(
        connection=connection,
        target_metadata=target_metadata(),
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
