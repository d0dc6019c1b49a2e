"""per-account Meta tokens: encrypted token, fingerprint, expiry and last check

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("token_ciphertext", "token_fingerprint", "token_expires_at", "token_checked_at")


def upgrade() -> None:
    utc = adflywheel.store.types.UTCDateTime(timezone=True)
    with op.batch_alter_table("meta_connections") as batch:
        batch.add_column(sa.Column("token_ciphertext", sa.Text(), nullable=True))
        batch.add_column(sa.Column("token_fingerprint", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("token_expires_at", utc, nullable=True))
        batch.add_column(sa.Column("token_checked_at", utc, nullable=True))
        batch.add_column(sa.Column("token_valid", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("meta_connections") as batch:
        for name in (*_COLUMNS, "token_valid"):
            batch.drop_column(name)
