"""Validation's cycle step: score the predictions whose window has closed, watch drift and data
health, and retrain through the registry's gate when accuracy or drift demands (only with the
compound learner on: it owns the models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.services.compound.training import train_challenger_and_gate
from adflywheel.services.monitor.service import validate_and_maybe_retrain
from adflywheel.services.observability.metrics import observe_validation

REPORTED = (
    "scored",
    "accuracy",
    # The headline accuracy binomial noise alone allows on the same impressions (the ceiling).
    "accuracy_noise_floor",
    "calibration",
    "normalized_entropy",
    "log_loss",
    "auc",
    "drift",
    "retrain_wanted",
    "retrain_triggered",
    "retrained",
    "retrain_reason",
    "blocked_by",
)


def validate_predictions(ctx: CycleContext) -> dict[str, Any]:
    retrain = retrainer(ctx) if Loop.COMPOUND in ctx.loops else None
    result = validate_and_maybe_retrain(
        ctx.deps.factory, ctx.account_id, ctx.now, retrain=retrain, alerts=ctx.deps.alert
    )
    observe_validation(result)
    out = {k: result[k] for k in REPORTED if k in result}
    out["breaker_open"] = bool((result.get("breaker") or {}).get("open"))
    return out


def retrainer(ctx: CycleContext) -> Callable[[Any, int, Any, str], dict[str, Any]]:
    """The retrain: a challenger trained as of the run, through the registry's gate."""

    def retrain(factory: Any, account_id: int, now: Any, reason: str) -> dict[str, Any]:
        decision = train_challenger_and_gate(
            factory, ctx.deps.settings, account_id, now, reason, actor="cycle/retrain"
        )
        # A refused challenger is an attempt (the old model keeps serving), not a retrain.
        status = {"promoted": "retrained"}.get(decision.status, decision.status)
        return {"status": status, "gate": decision.as_dict()}

    return retrain


STEP = CycleStep.of(Loop.MONITOR, validate_predictions)
