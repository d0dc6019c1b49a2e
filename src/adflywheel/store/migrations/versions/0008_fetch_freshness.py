"""actuals fetch and freshness (loop 6)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(name: str, nullable: bool) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, adflywheel.store.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "meta_connections",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("ad_account_id", sa.String(length=40), nullable=False),
        sa.Column("token_env", sa.String(length=100), nullable=True),
        _when("created_at", False),
        _when("updated_at", False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_meta_connections_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_meta_connections")),
    )
    op.create_table(
        "fetch_freshness",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _when("last_attempt_at", False),
        _when("last_success_at", True),
        _when("newest_hour", True),
        _when("complete_until", True),
        _when("window_start", True),
        _when("window_end", True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("hourly_received", sa.Integer(), nullable=False),
        sa.Column("hourly_inserted", sa.Integer(), nullable=False),
        sa.Column("hourly_updated", sa.Integer(), nullable=False),
        sa.Column("hourly_unchanged", sa.Integer(), nullable=False),
        sa.Column("daily_received", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_fetch_freshness_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_fetch_freshness")),
    )


def downgrade() -> None:
    op.drop_table("fetch_freshness")
    op.drop_table("meta_connections")
