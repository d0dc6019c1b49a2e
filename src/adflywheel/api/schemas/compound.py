"""Answers of the compound-learner routes (loop 5)."""

from __future__ import annotations

from typing import Any

from adflywheel.api.schemas.base import Answer


class MemberPredictionOut(Answer):
    """One base model's own answer with its 90% interval."""

    prediction: float
    interval: list[float]


class CompoundPredictionOut(Answer):
    """The blended CTR prediction, or ``prediction: null`` with the ``reason`` when no model
    can answer. ``xgboost_version_id`` and ``weights_as_of`` come with an answer only."""

    variant_id: str | None
    dna_version: str | None
    synthetic: bool
    as_of: str
    prediction: float | None
    interval: list[float] | None
    confidence: float | None
    models_used: list[str]
    weights: dict[str, float]
    method: str
    predictions: dict[str, MemberPredictionOut]
    reason: str
    xgboost_version_id: int | None = None
    weights_as_of: str | None = None
    source: str | None = None  # "cycle": computed by the hour's cycle; "computed": on request
    computed_at: str | None = None
    age_s: float | None = None


class RecalibrationOut(Answer):
    intercept: float
    slope: float


class EnsembleWeightsOut(Answer):
    """Weights learnt at ``as_of`` on the ``holdout`` hours, with each model's accuracy there."""

    id: int
    as_of: str
    method: str
    weights: dict[str, float]
    recalibration: RecalibrationOut
    reason: str
    holdout: list[str | None]
    xgboost_version_id: int | None
    metrics: dict[str, Any]


class WeightsHistoryOut(Answer):
    current: EnsembleWeightsOut | None
    history: list[EnsembleWeightsOut]
    note: str | None
