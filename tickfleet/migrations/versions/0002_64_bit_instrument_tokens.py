"""64-bit instrument tokens: ``subscriptions.token`` becomes BIGINT, like the registry's.

Kite's instrument tokens go up to 2**32 - 1; PostgreSQL's INTEGER stops at 2**31 - 1, so a
subscription to such a token failed there. SQLite stored it already; batch mode copies
its table to change the declared type. A downgrade fails on PostgreSQL while a token
above 2**31 - 1 is subscribed.

Created 2026-12-01 14:45:12.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.alter_column(
            "token",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.alter_column(
            "token",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )
