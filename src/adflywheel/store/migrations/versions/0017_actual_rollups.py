"""running totals of the hourly actuals: per ad and UTC day, per account and hour (issue #18)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 16:50:00.000000

Backfilled from ``hourly_actuals`` in SQL; from here on ``store.actuals`` keeps them in step.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_METRICS = (
    "impressions",
    "clicks",
    "link_clicks",
    "spend_minor",
    "conversions",
    "revenue_minor",
    "video_views",
)


def _counts() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in _METRICS]


def upgrade() -> None:
    utc = adflywheel.store.types.UTCDateTime(timezone=True)
    op.create_table(
        "variant_day_totals",
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        *_counts(),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_variant_day_totals_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["variants.id"],
            name=op.f("fk_variant_day_totals_variant_id_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("variant_id", "day", name=op.f("pk_variant_day_totals")),
    )
    op.create_table(
        "account_hour_totals",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour_start", utc, nullable=False),
        *_counts(),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_hour_totals_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "hour_start", name=op.f("pk_account_hour_totals")),
    )
    metrics = ", ".join(_METRICS)
    sums = ", ".join(f"SUM({name})" for name in _METRICS)
    # hour_start is timestamptz on PostgreSQL and naive UTC text on SQLite.
    postgres = op.get_bind().dialect.name == "postgresql"
    day = "(hour_start AT TIME ZONE 'UTC')::date" if postgres else "date(hour_start)"
    op.execute(
        f"INSERT INTO variant_day_totals (variant_id, day, account_id, {metrics}) "
        f"SELECT variant_id, {day}, account_id, {sums} FROM hourly_actuals "
        f"GROUP BY variant_id, {day}, account_id"
    )
    op.execute(
        f"INSERT INTO account_hour_totals (account_id, hour_start, {metrics}) "
        f"SELECT account_id, hour_start, {sums} FROM hourly_actuals "
        "GROUP BY account_id, hour_start"
    )


def downgrade() -> None:
    op.drop_table("account_hour_totals")
    op.drop_table("variant_day_totals")
