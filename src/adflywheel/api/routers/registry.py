"""Model registry endpoints (loop 5): list versions, train a challenger through the gate, and move
the champion by hand (promote a version, roll back). Only the caller's account is ever visible.

Training runs in the thread pool (seconds, not minutes). An account with too little data gets
409 with the reason; no version is stored and no metric is made up.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from adflywheel.api.deps import CallerDep, ServicesDep, SessionDep
from adflywheel.api.openapi import DESCRIPTIONS, kinds
from adflywheel.api.schemas.registry import (
    GateDecisionOut,
    ModelEventOut,
    ModelListingOut,
    NotTrainedOut,
)
from adflywheel.api.schemas.types import PathRowId
from adflywheel.services.compound import training as registry_service
from adflywheel.services.compound.training import MODEL_NAME, TrainOptions

router = APIRouter(prefix="/api/ml", tags=["model-registry"])

Reason = Annotated[str, Field(min_length=1, max_length=200)]


class TrainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason = "requested through the API"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    holdout_hours: int = Field(48, ge=1, le=24 * 30, description="Recent hours held out.")
    valid_hours: int = Field(48, ge=1, le=24 * 30, description="Early-stopping hours before.")
    lookback_days: int | None = Field(28, ge=1, le=365, description="Training history; null: all.")


class MoveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


@router.get("/models")
def list_models(
    caller: CallerDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> ModelListingOut:
    """The caller's model versions (newest first) with their metrics, the champion alias, and
    the promotion, rollback and refusal history with its evidence. Artifact locations are
    internal (a server path or bucket) and stay out; the SHA-256 identifies the artifact."""
    listing = registry_service.list_models(session, caller.account_id, limit=limit)
    for version in listing["versions"]:
        version.pop("artifact_uri", None)
    return ModelListingOut.model_validate(listing)


@router.post(
    "/models/train", responses={409: {"model": NotTrainedOut, "description": DESCRIPTIONS[409]}}
)
async def train(body: TrainIn, caller: CallerDep, services: ServicesDep) -> GateDecisionOut:
    """Train a challenger on the caller's data up to now and run the promotion gate."""
    options = TrainOptions(
        holdout_hours=body.holdout_hours,
        valid_hours=body.valid_hours,
        lookback_days=body.lookback_days,
        seed=body.seed,
    )
    decision = await run_in_threadpool(
        registry_service.train_challenger_and_gate,
        services.factory,
        services.settings,
        caller.account_id,
        services.clock.now(),
        body.reason,
        options=options,
        actor=f"api:{caller.account_name}",
    )
    if decision.status == "insufficient_data":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            {"message": f"no model trained: {decision.reason}", **decision.as_dict()},
        )
    return GateDecisionOut.model_validate(decision.as_dict())


@router.post("/models/{version_id}/promote", responses=kinds(409))
def promote(
    version_id: PathRowId,
    body: MoveIn,
    caller: CallerDep,
    session: SessionDep,
    services: ServicesDep,
) -> ModelEventOut:
    """Make one of the caller's versions the champion without the gate (recorded as manual)."""
    event = registry_service.promote(
        session,
        version_id,
        f"api:{caller.account_name}",
        body.reason,
        account_id=caller.account_id,
        now=services.clock.now(),
    )
    return ModelEventOut.model_validate(registry_service.event_out(event))


@router.post("/models/rollback", responses=kinds(404, 409))
def rollback(
    body: MoveIn,
    caller: CallerDep,
    session: SessionDep,
    services: ServicesDep,
    name: Annotated[str, Query(min_length=1, max_length=100)] = MODEL_NAME,
) -> ModelEventOut:
    """Point the champion back at the version it replaced."""
    event = registry_service.rollback(
        session,
        caller.account_id,
        name,
        f"api:{caller.account_name}",
        body.reason,
        now=services.clock.now(),
    )
    return ModelEventOut.model_validate(registry_service.event_out(event))
