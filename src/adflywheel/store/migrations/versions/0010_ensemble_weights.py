"""ensemble weights and their history (loop 5)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = adflywheel.store.types.UTCDateTime(timezone=True)
    op.create_table(
        "ensemble_weights",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("as_of", utc, nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("intercept", sa.Float(), nullable=False),
        sa.Column("slope", sa.Float(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("holdout_start", utc, nullable=True),
        sa.Column("holdout_end", utc, nullable=True),
        sa.Column("xgb_version_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_ensemble_weights_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["xgb_version_id"],
            ["model_versions.id"],
            name=op.f("fk_ensemble_weights_xgb_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ensemble_weights")),
    )
    op.create_index(
        "ix_ensemble_weights_account_asof",
        "ensemble_weights",
        ["account_id", "as_of"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_ensemble_weights_account_asof", table_name="ensemble_weights")
    op.drop_table("ensemble_weights")
