"""Thompson's cycle step: each active campaign's total split by the policy, within the promoter's
floors and the account's ceiling."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.loops.bandit import RatePrior
from adflywheel.services.bandit.budgets import (
    BudgetPolicy,
    CampaignState,
    apply_budgets,
    finish_stale_pending,
    load_campaign_state,
)
from adflywheel.services.bandit.policies import PriorProvider, ThompsonPolicy
from adflywheel.services.compound.serving_priors import ServingPriors
from adflywheel.services.crosslearn.priors import NichePriors
from adflywheel.services.promoter.actions import promotion_floors
from adflywheel.services.promoter.settings import load_settings
from adflywheel.store.engine import transaction
from adflywheel.store.queries import campaigns_of, hourly_series

log = logging.getLogger(__name__)


def budget_policy(ctx: CycleContext) -> BudgetPolicy:
    """Thompson, with priors for variants that have not delivered yet: the niche's published
    pattern when loop 3 is on, overridden by the compound learner's pre-launch prediction when
    loop 5 is on (it has seen the account's own history as well as the genes)."""
    if ctx.deps.policy is not None:
        return ctx.deps.policy
    seed = ctx.deps.settings.bandit_seed
    providers: list[PriorProvider] = []
    if Loop.CROSSLEARN in ctx.loops:
        providers.append(NichePriors(ctx.deps.factory))
    if Loop.COMPOUND in ctx.loops:
        serving = ServingPriors(seed=seed)
        serving.bind(ctx.deps.factory, ctx.deps.settings.data_dir)
        providers.append(serving)
    if not providers:
        return ThompsonPolicy(seed=seed)
    return ThompsonPolicy(seed=seed, prior_provider=LayeredPriors(tuple(providers)))


@dataclass(frozen=True, slots=True)
class LayeredPriors:
    """One prior provider from several: a later provider's prior replaces an earlier one's."""

    providers: tuple[PriorProvider, ...]

    def __call__(self, campaign: CampaignState, hour: datetime) -> dict[int, RatePrior]:
        out: dict[int, RatePrior] = {}
        for provider in self.providers:
            out.update(provider(campaign, hour))
        return out


def reallocate_budgets(ctx: CycleContext) -> dict[str, Any]:
    """Each active campaign's total split by the policy; promotion floors and the
    account's ceiling bound every ad set; nothing moves while the kill switch is on.

    Campaigns are isolated from one another. A campaign whose split cannot be decided from its
    data (a ``ValueError``: say, its total is above what its active variants' ceilings allow, or
    a promoted floor is above a lowered ceiling) is skipped with its reason in
    ``campaigns_skipped`` and alerted, and the other campaigns are still reallocated. Any other
    failure of one campaign (the policy crashed, the platform refused a change) does not stop the
    others either, but the step then fails with every such campaign named, so the run is
    ``partial`` and alerted (a retry of the hour re-sends its recorded pending changes)."""
    deps, account_id, hour = ctx.deps, ctx.account_id, ctx.hour
    policy = budget_policy(ctx)
    finished = finish_stale_pending(deps.factory, deps.platform, account_id, "cycle/", hour)
    skipped: list[dict[str, Any]] = []
    with transaction(deps.factory) as session:
        states: list[CampaignState] = []
        series = hourly_series(
            session,
            account_id,
            since=hour - timedelta(hours=ctx.options.evidence_window_hours),
            until=hour,
        )
        promoter = load_settings(session, account_id)
        if promoter.guardrails.kill_switch:
            return {"policy": policy.name, "skipped": "kill switch is on for this account"}
        floors = promotion_floors(session, account_id, hour)
        for campaign in campaigns_of(session, account_id):
            if campaign.status != "ACTIVE":
                continue
            try:
                state = load_campaign_state(
                    session,
                    account_id,
                    campaign,
                    hour,
                    series=series,
                    min_budgets=floors,
                    max_budget_minor=promoter.guardrails.max_variant_budget_minor,
                )
            except ValueError as error:  # this campaign only; the others go on
                skipped.append(_campaign_problem(ctx, campaign.id, campaign.external_id, error))
                continue
            if state is not None:
                states.append(state)
    changed = total = reallocated = 0
    failed: list[dict[str, Any]] = []
    for state in states:
        try:
            proposal = policy.propose(state, hour)
        except ValueError as error:  # an undecidable split skips this campaign, not the step
            skipped.append(_campaign_problem(ctx, state.campaign_id, state.external_id, error))
            continue
        except Exception as error:  # the others still go; the step fails below
            failed.append(_campaign_problem(ctx, state.campaign_id, state.external_id, error))
            continue
        try:
            changes = apply_budgets(
                deps.factory,
                deps.platform,
                account_id,
                proposal,
                actor=f"cycle/{policy.name}",
                cycle_hour=hour,
                now=ctx.now,
                dry_run=ctx.options.dry_run or deps.platform is None,
            )
        except Exception as error:  # the others are still applied; the step fails below
            failed.append(_campaign_problem(ctx, state.campaign_id, state.external_id, error))
            continue
        total += sum(proposal.budgets.values())
        changed += len(changes)
        reallocated += 1
    if failed:
        raise RuntimeError(
            f"{len(failed)} campaign(s) not reallocated ({reallocated} were, with {changed} "
            f"change(s); {len(skipped)} skipped): "
            + "; ".join(f"{f['external_id']}: {f['reason']}" for f in failed)
        )
    return {
        "policy": policy.name,
        "campaigns": reallocated,
        "campaigns_skipped": skipped,
        "budgets_changed": changed,
        "stale_pending_finished": finished,
        "total_budget_minor": total,
    }


def _campaign_problem(
    ctx: CycleContext, campaign_id: int, external_id: str, error: Exception
) -> dict[str, Any]:
    """One campaign's reallocation problem: logged, alerted when a sink is there, reported."""
    reason = f"{type(error).__name__}: {error}"
    log.warning(
        "account %s: campaign %s not reallocated at %s: %s",
        ctx.account_id,
        external_id,
        ctx.hour.isoformat(),
        reason,
    )
    if ctx.deps.alert is not None:
        try:
            ctx.deps.alert(
                "campaign_reallocation_skipped",
                f"account {ctx.account_id}: campaign {external_id} was not reallocated at "
                f"{ctx.hour.isoformat()}: {reason}",
                {
                    "account_id": ctx.account_id,
                    "campaign_id": campaign_id,
                    "campaign": external_id,
                    "hour": ctx.hour.isoformat(),
                },
            )
        except Exception:  # an alert that cannot be sent must not stop the reallocation
            log.exception("could not send the alert for campaign %s", external_id)
    return {"campaign_id": campaign_id, "external_id": external_id, "reason": reason}


def reallocation_on(ctx: CycleContext) -> bool:
    """An explicit policy (the harness's baselines) runs whether or not Thompson is on."""
    return ctx.deps.policy is not None or Loop.BANDIT in ctx.loops


STEP = CycleStep.of(Loop.BANDIT, reallocate_budgets, needs=reallocation_on)
