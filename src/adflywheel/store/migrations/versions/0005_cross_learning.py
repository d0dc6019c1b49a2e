"""cross-account learning (loop 3)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    dt = adflywheel.store.types.UTCDateTime(timezone=True)
    op.create_table(
        "niche_patterns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("niche", sa.String(length=40), nullable=False),
        sa.Column("period_start", dt, nullable=False),
        sa.Column("accounts", sa.String(length=16), nullable=False),
        sa.Column("noisy_count", sa.Float(), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("base_ctr", sa.Float(), nullable=False),
        sa.Column("base_ctr_low", sa.Float(), nullable=False),
        sa.Column("base_ctr_high", sa.Float(), nullable=False),
        sa.Column("base_log_sd", sa.Float(), nullable=False),
        sa.Column("effects", sa.JSON(), nullable=False),
        sa.Column("published_at", dt, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_niche_patterns")),
        sa.UniqueConstraint(
            "niche", "period_start", name=op.f("uq_niche_patterns_niche_period_start")
        ),
    )
    op.create_table(
        "privacy_ledger",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("niche", sa.String(length=40), nullable=False),
        sa.Column("period_start", dt, nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("mechanism", sa.String(length=40), nullable=False),
        sa.Column("spent_at", dt, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_ledger")),
        sa.UniqueConstraint(
            "niche", "period_start", name=op.f("uq_privacy_ledger_niche_period_start")
        ),
    )
    op.create_table(
        "account_niches",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("niche", sa.String(length=40), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("category_match", sa.String(length=40), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("n_texts", sa.Integer(), nullable=False),
        sa.Column("texts_digest", sa.String(length=64), nullable=False),
        sa.Column("detected_at", dt, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_niches_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_niches")),
    )
    op.create_table(
        "crosslearn_settings",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("opted_in", sa.Boolean(), nullable=False),
        sa.Column("declared_category", sa.String(length=100), nullable=True),
        sa.Column("updated_at", dt, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_crosslearn_settings_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_crosslearn_settings")),
    )
    op.create_table(
        "niche_contributions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("niche", sa.String(length=40), nullable=False),
        sa.Column("period_start", dt, nullable=False),
        sa.Column("log_base", sa.Float(), nullable=False),
        sa.Column("lifts", sa.JSON(), nullable=False),
        sa.Column("n_ads", sa.Integer(), nullable=False),
        sa.Column("clipped", sa.Boolean(), nullable=False),
        sa.Column("updated_at", dt, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_niche_contributions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_niche_contributions")),
        sa.UniqueConstraint(
            "account_id",
            "period_start",
            name=op.f("uq_niche_contributions_account_id_period_start"),
        ),
    )
    op.create_index(
        "ix_niche_contributions_niche_period",
        "niche_contributions",
        ["niche", "period_start"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_niche_contributions_niche_period", table_name="niche_contributions")
    op.drop_table("niche_contributions")
    op.drop_table("crosslearn_settings")
    op.drop_table("account_niches")
    op.drop_table("privacy_ledger")
    op.drop_table("niche_patterns")
