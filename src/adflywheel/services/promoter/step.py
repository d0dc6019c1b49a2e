"""The auto-promoter's cycle step, after the reallocation in the same hour: its idempotency keys
are the hour's."""

from __future__ import annotations

from typing import Any

from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.cycle.outcomes import Change, HoldCode, Outcome
from adflywheel.loops.promoter.guardrails import Hold
from adflywheel.services.promoter.report import PromotionReport
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
    _note_promotions(ctx, report)
    return {**report.summary(), "growth_reversed": reversed_}


def _note_promotions(ctx: CycleContext, report: PromotionReport) -> None:
    """Each promotion, with the decreases that fund it, as its campaign's changes: the ad set
    (the unit that has a budget) is what is promoted. A campaign with a shared ad set budget is
    held for its structure; any other campaign evaluated is held with nothing to promote (the
    reallocation's reason, noted first, stays)."""
    for h in report.held_back:
        if h["reason"] == Hold.SHARED_BUDGET.value:
            ctx.campaigns.note(h["campaign_id"], Outcome.HELD, HoldCode.STRUCTURE, h["detail"])
    for campaign in report.campaigns:
        ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.NO_CHANGE, "no winner to promote")
    for p in report.promoted:
        changes = [Change(p["ad_set_id"], "budget", p["old_budget_minor"], p["new_budget_minor"])]
        changes += [Change(f["ad_set_id"], "budget", f["old"], f["new"]) for f in p["funded_by"]]
        campaign, mode = p["campaign_id"], p["mode"]
        if mode == "applied":
            ctx.campaigns.note(campaign, Outcome.ACTED, changes=changes)
        elif mode == "pending_approval":
            message = f"a promotion of {p['ad_set_id']} waits for a person's approval"
            ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.AWAITING_APPROVAL, message, changes)
        elif report.recommend:
            ctx.campaigns.note(campaign, Outcome.RECOMMENDED, changes=changes)
        elif ctx.deps.platform is None:
            message = "no connected platform: the promotion is recorded, not written"
            ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.NO_PLATFORM, message, changes)
        else:
            message = f"the promotion is recorded as {mode}, not written"
            ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.DRY_RUN, message, changes)


STEP = CycleStep.of(Loop.PROMOTER, auto_promote)
