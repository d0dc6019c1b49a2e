"""budget_changes read newest first per account and per ad set (issue #18 page times)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 16:50:00.000000

Every budget change carries its decision's evidence (a JSON document), so a read without an
index scans tens of megabytes on a month of a large account: the log of a campaign, the last
24 hours, this hour's recommendations.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_budget_changes_account_created", "budget_changes", ["account_id", "created_at"]
    )
    op.create_index(
        "ix_budget_changes_ad_set_created", "budget_changes", ["ad_set_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_budget_changes_ad_set_created", table_name="budget_changes")
    op.drop_index("ix_budget_changes_account_created", table_name="budget_changes")
