"""actuals fetch and freshness (loop 6)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401  (placeholder until filled)
from alembic import op  # noqa: F401

import adflywheel.store.types  # noqa: F401

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
