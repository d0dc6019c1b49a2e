"""lifetime budgets on campaigns and ad sets: where a campaign's money is set (its structure)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("campaigns", "ad_sets")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("lifetime_budget_minor", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    # In place, not a batch copy: on SQLite a copy drops the table, and its children cascade.
    for table in reversed(_TABLES):
        op.execute(f"ALTER TABLE {table} DROP COLUMN lifetime_budget_minor")  # SQLite >= 3.35
