"""winner memory (loop 1)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = adflywheel.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "memory_indexes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("file_sha256", sa.String(length=64), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("built_at", UTC, nullable=True),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_memory_indexes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_indexes")),
        sa.UniqueConstraint("scope", name=op.f("uq_memory_indexes_scope")),
    )
    op.create_table(
        "memory_policies",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("threshold_ctr", sa.Float(), nullable=False),
        sa.Column("min_impressions", sa.BigInteger(), nullable=False),
        sa.Column("min_probability", sa.Float(), nullable=False),
        sa.Column("lapse_probability", sa.Float(), nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_memory_policies_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_memory_policies")),
    )
    op.create_table(
        "memory_winners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("dna_version", sa.String(length=20), nullable=False),
        sa.Column("vector", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("threshold_ctr", sa.Float(), nullable=False),
        sa.Column("qualified_impressions", sa.BigInteger(), nullable=False),
        sa.Column("qualified_clicks", sa.BigInteger(), nullable=False),
        sa.Column("qualified_probability", sa.Float(), nullable=False),
        sa.Column("latest_impressions", sa.BigInteger(), nullable=False),
        sa.Column("latest_clicks", sa.BigInteger(), nullable=False),
        sa.Column("latest_probability", sa.Float(), nullable=False),
        sa.Column("qualified_at", UTC, nullable=False),
        sa.Column("status_changed_at", UTC, nullable=False),
        sa.Column("evaluated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_memory_winners_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["variants.id"],
            name=op.f("fk_memory_winners_variant_id_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_winners")),
        sa.UniqueConstraint("variant_id", name=op.f("uq_memory_winners_variant_id")),
    )
    op.create_index(
        "ix_memory_winners_account_status",
        "memory_winners",
        ["account_id", "status"],
        unique=False,
    )
    op.create_table(
        "memory_winner_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("winner_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("probability", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_memory_winner_events_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["winner_id"],
            ["memory_winners.id"],
            name=op.f("fk_memory_winner_events_winner_id_memory_winners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memory_winner_events")),
    )
    op.create_index(
        "ix_memory_winner_events_winner", "memory_winner_events", ["winner_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_memory_winner_events_winner", table_name="memory_winner_events")
    op.drop_table("memory_winner_events")
    op.drop_index("ix_memory_winners_account_status", table_name="memory_winners")
    op.drop_table("memory_winners")
    op.drop_table("memory_policies")
    op.drop_table("memory_indexes")
