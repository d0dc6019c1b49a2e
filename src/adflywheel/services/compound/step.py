"""The compound learner's cycle step: a first model (or, with validation off, a daily retrain)
through the registry's gate at midnight UTC; ensemble weights relearnt every
``WEIGHTS_EVERY_HOURS`` on the latest holdout; and this hour's predictions of every active
variant, recorded to be scored."""

from __future__ import annotations

from typing import Any

from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.services.compound import service as cs
from adflywheel.services.compound import serving
from adflywheel.services.compound.registry import MODELS
from adflywheel.services.compound.training import load_champion, train_challenger_and_gate

WEIGHTS_EVERY_HOURS = 6


def compound(ctx: CycleContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    factory, hour = ctx.deps.factory, ctx.hour
    if hour.hour == 0:
        with factory() as session:
            has_model = load_champion(session, ctx.account_id) is not None
        if not has_model or Loop.MONITOR not in ctx.loops:
            reason = "daily retrain (loop 6 off)" if has_model else "no model serving yet"
            decision = train_challenger_and_gate(
                factory, ctx.deps.settings, ctx.account_id, ctx.now, reason, actor="cycle/compound"
            )
            out["trained"] = decision.status
    if hour.hour % WEIGHTS_EVERY_HOURS == 0:
        try:
            weights = cs.update_weights(factory, ctx.account_id, hour)
            out["weights"], out["method"] = weights.get("weights"), weights.get("method")
        except cs.NoModelError as error:
            out["weights"] = None
            out["method"] = f"no weights: {error}"
    MODELS.resize(ctx.deps.settings.model_cache_size)
    cache = serving.answers_for(ctx.deps.settings, factory.kw["bind"])

    def publish(answers: dict[int, dict[str, Any]], version: int | None) -> None:
        serving.publish(cache, ctx.account_id, hour, answers, version, ctx.now)

    recorded = cs.predict_and_record(factory, ctx.account_id, hour, on_answers=publish)
    out["predictions_recorded"] = recorded.get("recorded", recorded.get("rows"))
    return out


STEP = CycleStep.of(Loop.COMPOUND, compound)
