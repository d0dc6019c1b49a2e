"""Loop 6's endpoints: how one ad's prediction did, and the accuracy history per model.

``POST /api/ml/validate-prediction`` takes an ad of the caller's account (its platform id, as
everywhere in the API) and answers its latest prediction whose window has closed: predicted and
actual CTR with their intervals, the error, the headline accuracy and whether the monitor
triggered a retrain since. A prediction already scored by the cycle is answered from its stored
score; otherwise it is scored on the fly (nothing is written: the cycle owns scoring).
``GET /api/ml/accuracy`` is the stored history, per base predictor, model version or campaign.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.api.deps import CallerDep, ServicesDep, SessionDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.monitor import (
    AccuracyHistoryOut,
    AccuracySnapshotOut,
    ActualOut,
    PredictedOut,
    RetrainOut,
    RetrainRecordOut,
    ValidationOut,
)
from adflywheel.api.schemas.types import MAX_ROW_ID, ExternalId, QueryTimestamp
from adflywheel.core.clock import floor_hour
from adflywheel.loops.monitor import RetrainPolicy, ctr_interval
from adflywheel.services.monitor.scoring import (
    HOUR,
    last_actual_hour,
    score_row,
    snapshot_out,
    suspect_ranges,
    window_outcomes,
)
from adflywheel.services.monitor.service import (
    MonitorSettings,
    accuracy_snapshots,
    retrain_history,
)
from adflywheel.store.catalog import variant_by_external
from adflywheel.store.models import Prediction
from adflywheel.store.monitoring import PredictionScore, RetrainTrigger

router = APIRouter(prefix="/api/ml", tags=["validation and drift"])
THRESHOLD = RetrainPolicy().accuracy_threshold
# The models whose predictions are served, in order of preference (the monitor's own setting).
SERVED_MODELS = MonitorSettings().served_models


class ValidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ad_id: ExternalId = Field(description="The ad's platform id.")
    model_name: str | None = Field(
        None,
        max_length=100,
        description=(
            "Only this model (default: the served prediction, i.e. the ensemble's, newest; "
            "any model's newest when the ad has no served prediction)."
        ),
    )
    prediction_id: int | None = Field(
        None, ge=1, le=MAX_ROW_ID, description="A specific stored prediction."
    )


@router.post("/validate-prediction", responses=kinds(404, 409))
def validate_prediction(
    body: ValidateIn, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> ValidationOut:
    account_id = caller.account_id
    variant = variant_by_external(session, account_id, body.ad_id)
    if variant is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no ad {body.ad_id!r}")
    hour = floor_hour(services.clock.now())
    prediction = _pick(session, account_id, variant.id, body, hour)
    stored = session.get(PredictionScore, prediction.id)
    if stored is None:
        last = last_actual_hour(session, account_id)
        if last is None or prediction.window_end > last + HOUR:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"the window of prediction {prediction.id} closed at "
                f"{prediction.window_end.isoformat()} but its actuals have not all arrived "
                f"(latest hour: {last.isoformat() if last else 'none'}); try after the next fetch",
            )
        suspect = any(
            s < prediction.window_end and prediction.window_start < e
            for s, e in suspect_ranges(session, account_id)
        )
        outcome = window_outcomes(session, account_id, [prediction])[prediction.id]
        score = score_row(
            prediction, outcome, "quarantined" if suspect else "scored", services.clock.now()
        )
    else:
        score = stored
    trigger = session.scalar(
        select(RetrainTrigger)
        .where(
            RetrainTrigger.account_id == account_id,
            RetrainTrigger.hour >= prediction.window_end,
            # attempts that ran: a new model, or a challenger the gate refused (status says)
            RetrainTrigger.status.in_(("running", "retrained", "refused")),
        )
        .order_by(RetrainTrigger.hour)
        .limit(1)
    )
    actual_interval = (
        list(ctr_interval(score.clicks, score.impressions)) if score.impressions > 0 else None
    )
    return ValidationOut(
        ad_id=body.ad_id,
        prediction_id=prediction.id,
        model_name=prediction.model_name,
        model_version_id=prediction.model_version_id,
        window=[prediction.window_start.isoformat(), prediction.window_end.isoformat()],
        status=score.status,
        scored_by_cycle=stored is not None,
        predicted=PredictedOut(ctr=prediction.value, interval=[prediction.lower, prediction.upper]),
        actual=ActualOut(
            ctr=score.actual,
            impressions=score.impressions,
            clicks=score.clicks,
            interval=actual_interval,  # exact binomial 95%
        ),
        error=score.error,
        relative_error=score.relative_error,
        accuracy=score.accuracy,
        accuracy_threshold=THRESHOLD,
        below_threshold=score.accuracy is not None and score.accuracy < THRESHOLD,
        in_interval=score.in_interval,
        log_loss=score.log_loss,
        note=_note(score),
        retrain_triggered=trigger is not None,
        retrain=(
            RetrainOut(hour=trigger.hour.isoformat(), reason=trigger.reason, status=trigger.status)
            if trigger is not None
            else None
        ),
    )


def _pick(
    session: Session, account_id: int, variant_id: int, body: ValidateIn, hour: datetime
) -> Prediction:
    query = select(Prediction).where(
        Prediction.account_id == account_id,
        Prediction.variant_id == variant_id,
        Prediction.metric == "ctr",
    )
    if body.prediction_id is not None:
        query = query.where(Prediction.id == body.prediction_id)
    if body.model_name is not None:
        query = query.where(Prediction.model_name == body.model_name)
    candidates = list(session.scalars(query.order_by(Prediction.window_end.desc(), Prediction.id)))
    if not candidates:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no stored prediction for ad {body.ad_id!r}"
        )
    closed = [p for p in candidates if p.window_end <= hour]
    if not closed:
        first = min(p.window_end for p in candidates)
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"the prediction's outcome window has not closed yet: it closes at {first.isoformat()}",
        )
    if body.model_name is None and body.prediction_id is None:
        # The prediction the service served (the ensemble's row; base predictors' rows of the
        # same window are recorded beside it and would otherwise come first by id).
        for name in SERVED_MODELS:
            served = [p for p in closed if p.model_name == name]
            if served:
                return served[0]
    return closed[0]


def _note(score: PredictionScore) -> str | None:
    if score.status == "no_delivery":
        return "the ad had no impressions in the window: there is no outcome to score"
    if score.status == "quarantined":
        return "the window touches hours the data-health breaker marked suspect: not scored"
    if score.accuracy is None:
        return (
            "zero clicks in the window: the relative error (and so the accuracy) is undefined; "
            "the error is the predicted CTR itself"
        )
    return None


@router.get("/accuracy")
def accuracy_history(
    caller: CallerDep,
    session: SessionDep,
    model_name: Annotated[str | None, Query(max_length=100)] = None,
    model_version_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    scope: Annotated[Literal["model", "version", "segment"] | None, Query()] = None,
    since: QueryTimestamp = None,
    until: QueryTimestamp = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AccuracyHistoryOut:
    """Scored windows, newest first: accuracy, calibration with its interval, log-loss, NE, AUC
    per base predictor (``scope=model``), model version or campaign; and the retrain log."""
    if since is not None and until is not None and since > until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since is after until")
    rows = accuracy_snapshots(
        session,
        caller.account_id,
        scope=scope,
        model_name=model_name,
        model_version_id=model_version_id,
        since=since,
        until=until,
        limit=limit,
    )
    return AccuracyHistoryOut(
        accuracy_threshold=THRESHOLD,
        definition="accuracy = 1 - sum|expected - observed clicks| / sum observed clicks",
        history=[AccuracySnapshotOut.model_validate(snapshot_out(s)) for s in rows],
        retrains=[
            RetrainRecordOut.model_validate(r) for r in retrain_history(session, caller.account_id)
        ],
    )
