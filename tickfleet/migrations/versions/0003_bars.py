"""The fleet's own bars: one row per token and bar start (epoch seconds), OHLC, the
first and latest cumulative volume, OI and ``is_mock``; indexed by start for the
retention prune.

Created 2026-12-01 15:32:46.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bars",
        sa.Column("token", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("first_ts", sa.Float(), nullable=False),
        sa.Column("open", sa.Float(), nullable=False),
        sa.Column("high", sa.Float(), nullable=False),
        sa.Column("low", sa.Float(), nullable=False),
        sa.Column("last_ts", sa.Float(), nullable=False),
        sa.Column("close", sa.Float(), nullable=False),
        sa.Column("volume_first", sa.BigInteger(), nullable=True),
        sa.Column("volume_last", sa.BigInteger(), nullable=True),
        sa.Column("oi", sa.BigInteger(), nullable=True),
        sa.Column("is_mock", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("token", "start"),
    )
    with op.batch_alter_table("bars", schema=None) as batch_op:
        batch_op.create_index("ix_bars_start", ["start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("bars", schema=None) as batch_op:
        batch_op.drop_index("ix_bars_start")

    op.drop_table("bars")
