"""cycle report and power levels

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_loops",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("loops", sa.JSON(), nullable=False),
        sa.Column("updated_at", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_loops_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_loops")),
    )
    with op.batch_alter_table("cycle_runs") as batch:
        batch.add_column(
            sa.Column(
                "lease_until", adflywheel.store.types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("cycle_runs") as batch:
        batch.drop_column("lease_until")
    op.drop_table("account_loops")
