"""The auto-promoter's cycle step, after the reallocation in the same hour: its idempotency keys
are the hour's."""

from __future__ import annotations

from typing import Any

from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.services.promoter.reversal import reverse_faded_growth
from adflywheel.services.promoter.service import run_promotion


def auto_promote(ctx: CycleContext) -> dict[str, Any]:
    report = run_promotion(
        ctx.deps.factory,
        ctx.deps.platform,
        ctx.account_id,
        now=ctx.now,
        actor="promoter/cycle",
        dry_run=ctx.options.dry_run or ctx.deps.platform is None,
    )
    reversed_ = reverse_faded_growth(
        ctx.deps.factory,
        ctx.deps.platform,
        ctx.account_id,
        report,
        now=ctx.now,
        actor="promoter/cycle",
    )
    return {**report.summary(), "growth_reversed": reversed_}


STEP = CycleStep.of(Loop.PROMOTER, auto_promote)
