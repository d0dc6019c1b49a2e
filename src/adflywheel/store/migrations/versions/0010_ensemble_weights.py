"""ensemble weights and their history (loop 5)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa  # noqa: F401  (placeholder until filled)
from alembic import op  # noqa: F401

import adflywheel.store.types  # noqa: F401

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
