"""Answers of the validation and drift routes (loop 6)."""

from __future__ import annotations

from typing import Any

from adflywheel.api.schemas.base import Answer


class PredictedOut(Answer):
    ctr: float
    interval: list[float | None]


class ActualOut(Answer):
    """What happened in the window; ``interval`` is the exact binomial 95% of the CTR."""

    ctr: float | None
    impressions: int
    clicks: int
    interval: list[float] | None


class RetrainOut(Answer):
    hour: str
    reason: str
    status: str


class ValidationOut(Answer):
    """An ad's latest prediction whose window closed, against what happened."""

    ad_id: str
    prediction_id: int
    model_name: str
    model_version_id: int | None
    window: list[str]
    status: str
    scored_by_cycle: bool
    predicted: PredictedOut
    actual: ActualOut
    error: float | None
    relative_error: float | None
    accuracy: float | None
    accuracy_threshold: float
    below_threshold: bool
    in_interval: bool | None
    log_loss: float | None
    note: str | None
    retrain_triggered: bool
    retrain: RetrainOut | None


class AccuracySnapshotOut(Answer):
    """One scored window of one scope (a base model, a model version or a campaign)."""

    window_end: str
    scope: str
    model_name: str
    model_version_id: int | None
    segment: str | None
    n_predictions: int
    impressions: int
    clicks: int
    expected_clicks: float
    accuracy: float | None
    calibration: float | None
    calibration_interval: list[float | None]
    log_loss: float
    normalized_entropy: float | None
    auc: float | None
    background_ctr: float | None
    interval_coverage: float | None


class RetrainRecordOut(Answer):
    hour: str
    reason: str
    status: str
    evidence: dict[str, Any]
    result: dict[str, Any]


class AccuracyHistoryOut(Answer):
    accuracy_threshold: float
    definition: str
    history: list[AccuracySnapshotOut]
    retrains: list[RetrainRecordOut]
