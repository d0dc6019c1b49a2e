"""Prediction scoring, drift state, retrain triggers and alerts (loop 6).

- ``prediction_scores``: one row per scored prediction (its window's actuals and errors), so the
  ``predictions`` row itself only gains ``scored_at``.
- ``accuracy_snapshots``: aggregates of the predictions whose window closed at one hour, per
  base predictor, per model version and per segment (campaign), keyed by ``group_key``.
- ``drift_detectors``: the Page-Hinkley state per account and stream.
- ``data_health``: the breaker's verdict per account and checked hour, with the suspect hours.
- ``retrain_triggers``: every time a retrain was wanted (ran, or blocked and why), with evidence.
- ``alerts``: everything the alert sink raised, and whether the webhook took it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy import UniqueConstraint as Unique
from sqlalchemy.orm import Mapped, mapped_column

from adflywheel.store.models import Base
from adflywheel.store.types import UTCDateTime


class PredictionScore(Base):
    __tablename__ = "prediction_scores"
    __table_args__ = (Index("ix_prediction_scores_account_window", "account_id", "window_end"),)

    prediction_id: Mapped[int] = mapped_column(
        ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True
    )
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(100))
    model_version_id: Mapped[int | None] = mapped_column(Integer)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # scored | no_delivery (no impressions: no outcome) | quarantined (broken actuals)
    status: Mapped[str] = mapped_column(String(20))
    impressions: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    predicted: Mapped[float] = mapped_column(Float)
    actual: Mapped[float | None] = mapped_column(Float)
    error: Mapped[float | None] = mapped_column(Float)  # predicted - actual
    relative_error: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    log_loss: Mapped[float | None] = mapped_column(Float)
    in_interval: Mapped[bool | None] = mapped_column(Boolean)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccuracySnapshot(Base):
    __tablename__ = "accuracy_snapshots"
    __table_args__ = (Unique("account_id", "window_end", "group_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    group_key: Mapped[str] = mapped_column(String(300))
    scope: Mapped[str] = mapped_column(String(20))  # model | version | segment
    model_name: Mapped[str] = mapped_column(String(100))
    model_version_id: Mapped[int | None] = mapped_column(Integer)
    segment: Mapped[str | None] = mapped_column(String(100))
    n_predictions: Mapped[int] = mapped_column(Integer)
    impressions: Mapped[int] = mapped_column(BigInteger)
    clicks: Mapped[int] = mapped_column(BigInteger)
    expected_clicks: Mapped[float] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    calibration: Mapped[float | None] = mapped_column(Float)
    calibration_lower: Mapped[float | None] = mapped_column(Float)
    calibration_upper: Mapped[float | None] = mapped_column(Float)
    log_loss: Mapped[float] = mapped_column(Float)
    normalized_entropy: Mapped[float | None] = mapped_column(Float)
    auc: Mapped[float | None] = mapped_column(Float)
    background_ctr: Mapped[float | None] = mapped_column(Float)
    coverage: Mapped[float | None] = mapped_column(Float)  # share of actuals inside intervals
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DriftDetector(Base):
    __tablename__ = "drift_detectors"

    account_id: Mapped[int] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    stream: Mapped[str] = mapped_column(String(150), primary_key=True)  # "<model>/<loss|cal>"
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_hour: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_value: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DataHealth(Base):
    __tablename__ = "data_health"
    __table_args__ = (Unique("account_id", "checked_hour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    checked_hour: Mapped[datetime] = mapped_column(UTCDateTime)
    is_open: Mapped[bool] = mapped_column(Boolean)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    suspect_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspect_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RetrainTrigger(Base):
    __tablename__ = "retrain_triggers"
    __table_args__ = (Unique("account_id", "hour"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    hour: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(100))
    # running | retrained | not_retrained | failed | blocked_breaker | blocked_cooldown
    # | blocked_no_retrainer
    status: Mapped[str] = mapped_column(String(30))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))  # drift | breaker | retrain | fetch_failure
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    delivery: Mapped[str] = mapped_column(String(200))  # logged | webhook:<status> | failed: ..
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
