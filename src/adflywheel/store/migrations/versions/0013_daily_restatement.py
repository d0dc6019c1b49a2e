"""restated conversions: each account's attribution window; the last daily re-read of it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FRESHNESS = ("daily_refetched_at", "daily_refetch_days", "daily_restated")


def upgrade() -> None:
    utc = adflywheel.store.types.UTCDateTime(timezone=True)
    # Null window: Meta's default (7-day click), so existing accounts need no value. In place,
    # not a batch copy: on SQLite that drops ``accounts``, and every child row cascades with it.
    op.add_column("accounts", sa.Column("attribution_window_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("fetch_freshness") as batch:
        batch.add_column(sa.Column("daily_refetched_at", utc, nullable=True))
        batch.add_column(sa.Column("daily_refetch_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("daily_restated", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fetch_freshness") as batch:
        for name in reversed(_FRESHNESS):
            batch.drop_column(name)
    op.execute("ALTER TABLE accounts DROP COLUMN attribution_window_days")  # SQLite >= 3.35
