"""Thompson's cycle step: each active campaign's total split by the policy, within the promoter's
floors and the account's ceiling."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from adflywheel.core.attribution import DEFAULT_WINDOW_DAYS, window_of
from adflywheel.core.domain import AccountMode, BudgetStructure
from adflywheel.core.loops import Loop
from adflywheel.cycle.context import CycleContext, CycleStep
from adflywheel.cycle.outcomes import Change, HoldCode, Outcome
from adflywheel.loops.bandit import Bounds, RatePrior, settle
from adflywheel.services.bandit.budgets import (
    AppliedChange,
    BudgetPolicy,
    CampaignState,
    Proposal,
    apply_budgets,
    finish_stale_pending,
    is_active,
    load_campaign_state,
)
from adflywheel.services.bandit.edits import account_bounds, minimums
from adflywheel.services.bandit.pausing import pause_losers
from adflywheel.services.bandit.policies import PriorProvider, ThompsonPolicy
from adflywheel.services.bandit.recommendations import expire_recommendations
from adflywheel.services.compound.serving_priors import ServingPriors
from adflywheel.services.crosslearn.priors import NichePriors
from adflywheel.services.promoter.actions import promotion_floors
from adflywheel.services.promoter.funding import left_alone
from adflywheel.services.promoter.settings import load_settings
from adflywheel.store.engine import transaction
from adflywheel.store.models import Account
from adflywheel.store.queries import (
    campaign_structures,
    campaigns_of,
    hourly_series,
    variant_totals,
)

log = logging.getLogger(__name__)


def budget_policy(ctx: CycleContext, window_days: int = DEFAULT_WINDOW_DAYS) -> BudgetPolicy:
    """Thompson, with priors for variants that have not delivered yet: the niche's published
    pattern when loop 3 is on, overridden by the compound learner's pre-launch prediction when
    loop 5 is on (it has seen the account's own history as well as the genes). ``window_days``:
    the account's attribution window, inside which conversions are marked provisional."""
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
    priors = LayeredPriors(tuple(providers)) if providers else None
    return ThompsonPolicy(seed=seed, prior_provider=priors, attribution_window_days=window_days)


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
    """Each active campaign's total split by the policy, then settled to the account's edit
    rules (bounded steps, intervals, dead band, the platform's minimum, hands off what the
    advertiser changed); promotion floors and the ceilings bound every ad set; nothing moves
    while the kill switch is on, in a freeze window, for an excluded or held-out campaign. In
    recommend mode every change is recorded as a recommendation and nothing is written.

    Campaigns are isolated from one another. A campaign whose split cannot be decided from its
    data (a ``ValueError``: say, its total is above what its active variants' ceilings allow, or
    a promoted floor is above a lowered ceiling) is skipped with its reason in
    ``campaigns_skipped`` and alerted, and the other campaigns are still reallocated. Any other
    failure of one campaign (the policy crashed, the platform refused a change) does not stop the
    others either, but the step then fails with every such campaign named, so the run is
    ``partial`` and alerted (a retry of the hour re-sends its recorded pending changes)."""
    deps, account_id, hour = ctx.deps, ctx.account_id, ctx.hour
    finished = 0
    with transaction(deps.factory) as session:  # last hour's recommendations can no longer go
        expire_recommendations(session, account_id, ctx.now)
        mode = load_settings(session, account_id).guardrails.mode
    # A crashed hour's pending split is finished *before* the plan reads the budgets: a plan read
    # first splits the half-changed total and the campaign's total drifts for good.
    if _write_mode(ctx, mode) == "applied":
        finished = finish_stale_pending(deps.factory, deps.platform, account_id, "cycle/", hour)
    plan = _plan(ctx)
    policy = budget_policy(ctx, plan.window_days)
    if plan.stopped is not None:
        for campaign in plan.structures:
            ctx.campaigns.note(campaign, Outcome.HELD, plan.stopped_code, plan.stopped)
        return {
            "policy": policy.name,
            "skipped": plan.stopped,
            "budget_changes": asdict(ChangeCounts()),
        }
    counts = ChangeCounts()
    changed = total = reallocated = 0
    skipped, failed = list(plan.skipped), []
    restoring: list[dict[str, Any]] = []
    for problem in plan.skipped:
        _note_skipped(ctx, plan, problem)
    for state in plan.states:
        try:
            proposal = policy.propose(state, hour)
        except ValueError as error:  # an undecidable split skips this campaign, not the step
            skipped.append(_campaign_problem(ctx, state.campaign_id, state.external_id, error))
            _note_skipped(ctx, plan, skipped[-1])
            continue
        except Exception as error:  # the others still go; the step fails below
            failed.append(_campaign_problem(ctx, state.campaign_id, state.external_id, error))
            _note_failed(ctx, failed[-1])
            continue
        proposal = _settled(proposal, state, plan)
        try:
            changes = apply_budgets(
                deps.factory,
                deps.platform,
                account_id,
                proposal,
                actor=f"cycle/{policy.name}",
                cycle_hour=hour,
                now=ctx.now,
                dry_run=plan.write_mode != "applied",
                recommend=plan.write_mode == "recommended",
            )
        except Exception as error:  # the others are still applied; the step fails below
            failed.append(_campaign_problem(ctx, state.campaign_id, state.external_id, error))
            _note_failed(ctx, failed[-1])
            continue
        _note_changes(ctx, plan, state.external_id, proposal, changes)
        if state.reclaimed:
            restoring.append(_restoring(state, proposal))
        counts = counts.plus(len(changes), plan.write_mode)
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
        "mode": plan.mode,
        "campaigns": reallocated,
        "campaigns_skipped": skipped,
        "campaigns_left_alone": list(plan.left_alone),
        "budgets_changed": changed,
        "budget_changes": asdict(counts),
        "stale_pending_finished": finished,
        "total_budget_minor": total,
        "paused_budgets_reclaimed": restoring,
    }


def _restoring(state: CampaignState, proposal: Proposal) -> dict[str, Any]:
    """How far a campaign with paused ad sets is from spending its whole total again."""
    total = sum(v.budget_minor or 0 for v in state.variants)
    paused = {v.ad_set_external_id for v in state.variants if not is_active(v)}
    current = {v.ad_set_external_id: v.budget_minor or 0 for v in state.variants}
    after = {**current, **proposal.budgets}
    active = sum(b for k, b in after.items() if k not in paused)
    return {
        "campaign": state.external_id,
        "campaign_total_minor": total,
        "active_minor": active,
        "active_share": round(active / total, 4) if total else 0.0,
        "paused_ad_sets": sorted(paused),
    }


@dataclass(frozen=True, slots=True)
class ChangeCounts:
    """What became of this hour's decided changes: written, recorded as a dry run (asked for, or
    no platform), recorded as a recommendation (recommend mode), or waiting for approval."""

    decided: int = 0
    applied: int = 0
    dry_run: int = 0
    awaiting_approval: int = 0
    recommended: int = 0

    def plus(self, n: int, how: str) -> ChangeCounts:
        fields = asdict(self)
        fields["decided"] += n
        fields[how] += n
        return ChangeCounts(**fields)


@dataclass(frozen=True, slots=True)
class _Plan:
    """The hour's reallocation before any policy runs: which campaigns, under which bounds."""

    mode: str
    write_mode: str  # "applied", "dry_run" or "recommended"
    structures: dict[str, BudgetStructure]  # every active campaign's, by platform id
    stopped: str | None = None
    stopped_code: HoldCode | None = None
    states: tuple[CampaignState, ...] = ()
    bounds: dict[str, Bounds] = field(default_factory=dict)
    dead_band: float = 0.0
    skipped: tuple[dict[str, Any], ...] = ()
    left_alone: tuple[dict[str, str], ...] = ()
    window_days: int = DEFAULT_WINDOW_DAYS  # the account's attribution window


def _plan(ctx: CycleContext) -> _Plan:
    deps, account_id, hour = ctx.deps, ctx.account_id, ctx.hour
    with transaction(deps.factory) as session:
        account = session.get(Account, account_id)
        assert account is not None
        window = window_of(account.attribution_window_days)
        g = load_settings(session, account_id).guardrails
        write_mode = _write_mode(ctx, g.mode)
        structures = campaign_structures(session, account_id)
        if g.kill_switch:
            stop = "kill switch is on for this account"
            return _Plan(g.mode.value, write_mode, structures, stop, HoldCode.KILL_SWITCH)
        if g.frozen(hour):
            stop = "a freeze window covers this hour"
            return _Plan(g.mode.value, write_mode, structures, stop, HoldCode.FREEZE)
        series = hourly_series(
            session,
            account_id,
            since=hour - timedelta(hours=ctx.options.evidence_window_hours),
            until=hour,
        )
        bounds = account_bounds(
            session, deps.platform, account_id, g, ctx.now, dry_run=write_mode != "applied"
        )
        floors = promotion_floors(session, account_id, hour)
        totals = variant_totals(session, account_id, until=hour)  # every campaign's, at once
        states: list[CampaignState] = []
        skipped: list[dict[str, Any]] = []
        untouched: list[dict[str, str]] = []
        for campaign in campaigns_of(session, account_id):
            if campaign.status != "ACTIVE":
                continue
            alone = left_alone(g, account_id, campaign.external_id, hour)
            if alone is not None:
                code, why = alone
                untouched.append({"external_id": campaign.external_id, "why": why})
                ctx.campaigns.note(campaign.external_id, Outcome.HELD, code, why)
                continue
            try:
                state = load_campaign_state(
                    session,
                    account_id,
                    campaign,
                    hour,
                    series=series,
                    min_budgets=minimums(floors, bounds),
                    max_budget_minor=g.max_variant_budget_minor,
                    max_budgets={k: b.high for k, b in bounds.items()},
                    totals=totals,
                )
            except ValueError as error:  # this campaign only; the others go on
                skipped.append(_campaign_problem(ctx, campaign.id, campaign.external_id, error))
                continue
            if state is not None:
                states.append(state)
            else:
                _note_nothing_to_split(ctx, campaign.external_id, structures)
    return _Plan(
        g.mode.value,
        write_mode,
        structures,
        None,
        None,
        tuple(states),
        bounds,
        g.edit_dead_band,
        tuple(skipped),
        tuple(untouched),
        window,
    )


_SHARED_BUDGETS = {
    BudgetStructure.AD_SET_BUDGETS_MULTI_AD: "ad sets with several ads share one budget",
    BudgetStructure.CAMPAIGN_BUDGET: "a campaign budget (CBO): no ad set budget to move",
    BudgetStructure.MIXED: "some ad sets have budgets and others share the campaign's",
}


def _note_nothing_to_split(
    ctx: CycleContext, campaign: str, structures: dict[str, BudgetStructure]
) -> None:
    structure = structures.get(campaign)
    if structure is BudgetStructure.CAMPAIGN_BUDGET:
        ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.STRUCTURE, _SHARED_BUDGETS[structure])
    else:
        ctx.campaigns.note(
            campaign, Outcome.HELD, HoldCode.NO_BUDGET, "no active ad with a budget to split"
        )


def _note_skipped(ctx: CycleContext, plan: _Plan, problem: dict[str, Any]) -> None:
    """A split that could not be decided: the structure's fault, or the data's and bounds'."""
    campaign = problem["external_id"]
    structure = plan.structures.get(campaign)
    if structure in _SHARED_BUDGETS:
        message = f"{_SHARED_BUDGETS[structure]} ({problem['reason']})"
        ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.STRUCTURE, message)
    else:
        ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.UNDECIDABLE, problem["reason"])


def _note_failed(ctx: CycleContext, problem: dict[str, Any]) -> None:
    ctx.campaigns.note(problem["external_id"], Outcome.FAILED, HoldCode.ERROR, problem["reason"])


def _note_changes(
    ctx: CycleContext,
    plan: _Plan,
    campaign: str,
    proposal: Proposal,
    changes: list[AppliedChange],
) -> None:
    """Acted (written), recommended, or held: for a dry run, no platform, or no change."""
    made = [
        Change(c.ad_set_external_id, "budget", c.old_budget_minor, c.new_budget_minor)
        for c in changes
    ]
    if not made:
        held = proposal.evidence.get("edit_rules")
        if held:
            message = "waiting for the edit rules: " + ", ".join(
                f"{k} ({why})" for k, why in sorted(held.items())
            )
            ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.EDIT_RULES, message)
        else:
            message = "the split keeps today's budgets (or moves less than the dead band)"
            ctx.campaigns.note(campaign, Outcome.HELD, HoldCode.NO_CHANGE, message)
    else:
        connected = ctx.deps.platform is not None
        ctx.campaigns.note_written(campaign, plan.write_mode, made, connected=connected)


def _write_mode(ctx: CycleContext, mode: AccountMode) -> str:
    if ctx.options.dry_run or ctx.deps.platform is None:
        return "dry_run"
    return "applied" if mode is AccountMode.AUTOPILOT else "recommended"


def _settled(proposal: Proposal, state: CampaignState, plan: _Plan) -> Proposal:
    return settled_proposal(proposal, state, plan.bounds, plan.dead_band)


def settled_proposal(
    proposal: Proposal, state: CampaignState, all_bounds: dict[str, Bounds], dead_band: float
) -> Proposal:
    """The policy's proposal within the edit rules, the campaign's total kept (over its active
    ad sets and the paused ones whose budget it reclaims)."""
    if state.reclaimed:
        budgets = {**proposal.budgets, **state.reclaimed}
        evidence = {**proposal.evidence, "reclaimed_from_paused": dict(state.reclaimed)}
        proposal = Proposal(budgets, proposal.reason, evidence)
    current = {
        v.ad_set_external_id: v.budget_minor or 0
        for v in state.variants
        if v.ad_set_external_id in proposal.budgets
    }
    bounds = {
        k: all_bounds.get(k) or Bounds(current[k], current[k], "unknown budget")
        for k in proposal.budgets
    }
    settled = settle(proposal.budgets, current, bounds, dead_band)
    held = sorted(k for k in settled if settled[k] != proposal.budgets[k])
    evidence = dict(proposal.evidence)
    if held:
        evidence["edit_rules"] = {k: bounds[k].why for k in held}
    return Proposal(settled, proposal.reason, evidence)


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


def budgets_and_losers(ctx: CycleContext) -> dict[str, Any]:
    """Loop 2's hour: the reallocation between ad sets, then the clear losers paused inside ad
    sets whose ads share a budget (``pausing``; only when Thompson is on: the harness's
    baselines move budgets and nothing else). One failing does not stop the other; the step
    then fails with both reasons."""
    problems: list[Exception] = []
    out: dict[str, Any] = {}
    try:
        out = reallocate_budgets(ctx)
    except Exception as error:
        problems.append(error)
    if Loop.BANDIT in ctx.loops:
        try:
            out["losers"] = pause_losers(ctx)
        except Exception as error:
            problems.append(error)
    if problems:
        raise RuntimeError("; ".join(str(p) for p in problems)) from problems[0]
    return out


STEP = CycleStep.of(Loop.BANDIT, budgets_and_losers, needs=reallocation_on)
