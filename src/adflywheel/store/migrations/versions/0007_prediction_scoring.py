"""prediction scoring, drift and alerts (loop 6)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import adflywheel.store.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accuracy_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("window_end", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("group_key", sa.String(length=300), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("segment", sa.String(length=100), nullable=True),
        sa.Column("n_predictions", sa.Integer(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("expected_clicks", sa.Float(), nullable=False),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("calibration", sa.Float(), nullable=True),
        sa.Column("calibration_lower", sa.Float(), nullable=True),
        sa.Column("calibration_upper", sa.Float(), nullable=True),
        sa.Column("log_loss", sa.Float(), nullable=False),
        sa.Column("normalized_entropy", sa.Float(), nullable=True),
        sa.Column("auc", sa.Float(), nullable=True),
        sa.Column("background_ctr", sa.Float(), nullable=True),
        sa.Column("coverage", sa.Float(), nullable=True),
        sa.Column("created_at", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_accuracy_snapshots_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accuracy_snapshots")),
        sa.UniqueConstraint(
            "account_id",
            "window_end",
            "group_key",
            name=op.f("uq_accuracy_snapshots_account_id_window_end_group_key"),
        ),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("delivery", sa.String(length=200), nullable=False),
        sa.Column("created_at", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_alerts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(
        "ix_alerts_account_created", "alerts", ["account_id", "created_at"], unique=False
    )
    op.create_table(
        "data_health",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column(
            "checked_hour", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("is_open", sa.Boolean(), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column(
            "suspect_start", adflywheel.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("suspect_end", adflywheel.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_data_health_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_health")),
        sa.UniqueConstraint(
            "account_id", "checked_hour", name=op.f("uq_data_health_account_id_checked_hour")
        ),
    )
    op.create_table(
        "drift_detectors",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=150), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("last_hour", adflywheel.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_value", sa.Float(), nullable=True),
        sa.Column("updated_at", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_drift_detectors_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "stream", name=op.f("pk_drift_detectors")),
    )
    op.create_table(
        "retrain_triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("hour", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", adflywheel.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_retrain_triggers_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_triggers")),
        sa.UniqueConstraint("account_id", "hour", name=op.f("uq_retrain_triggers_account_id_hour")),
    )
    op.create_table(
        "prediction_scores",
        sa.Column("prediction_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("window_end", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=False),
        sa.Column("clicks", sa.BigInteger(), nullable=False),
        sa.Column("predicted", sa.Float(), nullable=False),
        sa.Column("actual", sa.Float(), nullable=True),
        sa.Column("error", sa.Float(), nullable=True),
        sa.Column("relative_error", sa.Float(), nullable=True),
        sa.Column("accuracy", sa.Float(), nullable=True),
        sa.Column("log_loss", sa.Float(), nullable=True),
        sa.Column("in_interval", sa.Boolean(), nullable=True),
        sa.Column("scored_at", adflywheel.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_prediction_scores_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["prediction_id"],
            ["predictions.id"],
            name=op.f("fk_prediction_scores_prediction_id_predictions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["variants.id"],
            name=op.f("fk_prediction_scores_variant_id_variants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("prediction_id", name=op.f("pk_prediction_scores")),
    )
    op.create_index(
        "ix_prediction_scores_account_window",
        "prediction_scores",
        ["account_id", "window_end"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_prediction_scores_account_window", table_name="prediction_scores")
    op.drop_table("prediction_scores")
    op.drop_table("retrain_triggers")
    op.drop_table("drift_detectors")
    op.drop_table("data_health")
    op.drop_index("ix_alerts_account_created", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("accuracy_snapshots")
