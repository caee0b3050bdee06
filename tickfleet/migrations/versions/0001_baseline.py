"""Baseline: the schema ``create_all`` made up to tickfleet 0.3.0.

``tickfleet init-db`` stamps a database from before migrations at this revision instead of
running it, so this must stay exactly what 0.3.0's models created (``subscriptions.token``
32-bit); later revisions change it.

Created 2026-12-01 14:44:56.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instruments",
        sa.Column("instrument_token", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("exchange_token", sa.BigInteger(), nullable=False),
        sa.Column("tradingsymbol", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("underlying", sa.String(), nullable=False),
        sa.Column("last_price", sa.Double(), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=True),
        sa.Column("strike", sa.Double(), nullable=False),
        sa.Column("tick_size", sa.Double(), nullable=False),
        sa.Column("lot_size", sa.Integer(), nullable=False),
        sa.Column("instrument_type", sa.String(), nullable=False),
        sa.Column("segment", sa.String(), nullable=False),
        sa.Column("exchange", sa.String(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instrument_token"),
    )
    with op.batch_alter_table("instruments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_instruments_chain",
            ["underlying", "expiry", "instrument_type", "strike"],
            unique=False,
        )

    op.create_table(
        "subscriptions",
        sa.Column("token", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("pinned_account", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("connection", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("token"),
    )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscriptions_status"), ["status"], unique=False)

    op.create_table(
        "tickfleet_meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("tickfleet_meta")
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriptions_status"))

    op.drop_table("subscriptions")
    with op.batch_alter_table("instruments", schema=None) as batch_op:
        batch_op.drop_index("ix_instruments_chain")

    op.drop_table("instruments")
