"""The cycle's steps: each a thin call into one loop's shell, in the order the cycle runs them.

Every step takes the ``CycleContext`` and returns a small JSON-able dict for the report. Steps do
their own transactions, so a failing step leaves nothing half-written behind it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from adflywheel.cycle.runner import CycleContext, Step
from adflywheel.loops.bandit import RatePrior
from adflywheel.services.bandit.budgets import (
    BudgetPolicy,
    CampaignState,
    apply_budgets,
    finish_stale_pending,
    load_campaign_state,
)
from adflywheel.services.bandit.policies import PriorProvider, ThompsonPolicy
from adflywheel.services.dna.service import ensure_dna
from adflywheel.services.monitor.fetch import fetch_account_actuals
from adflywheel.services.promoter.actions import promotion_floors
from adflywheel.services.promoter.service import run_promotion
from adflywheel.services.promoter.settings import load_settings
from adflywheel.store.actuals import upsert_actuals
from adflywheel.store.catalog import sync_catalog
from adflywheel.store.engine import transaction
from adflywheel.store.models import Account
from adflywheel.store.queries import campaigns_of, hourly_series

log = logging.getLogger(__name__)

NO_PLATFORM = "no connected ad platform: actuals arrive by POST /api/ml/actuals"


def sync_catalogue(ctx: CycleContext) -> dict[str, Any]:
    platform = ctx.deps.platform
    if platform is None:
        return {"skipped": NO_PLATFORM}
    campaigns, ad_sets, ads = (
        platform.list_campaigns(),
        platform.list_ad_sets(),
        platform.list_ads(),
    )
    with transaction(ctx.deps.factory) as session:
        counts = sync_catalog(session, ctx.account_id, campaigns, ad_sets, ads, ctx.now)
    return {"campaigns": counts.campaigns, "ad_sets": counts.ad_sets, "ads": counts.ads}


def fetch_actuals(ctx: CycleContext) -> dict[str, Any]:
    """Re-pull the hours that may still change and upsert them (idempotent, freshness kept)."""
    deps, platform = ctx.deps, ctx.deps.platform
    if platform is None:
        return {"skipped": NO_PLATFORM}
    lookback = ctx.options.actuals_lookback_hours
    if lookback is None:
        report = fetch_account_actuals(
            deps.factory, platform, ctx.account_id, ctx.now, ctx.clock, alerts=deps.alert
        )
        return {
            "window": report.get("window"),
            **{k: v for k, v in (report.get("hourly") or {}).items()},
            "daily": report.get("daily"),
        }
    start = ctx.hour - timedelta(hours=lookback)
    rows = platform.fetch_insights(start, ctx.hour)
    with transaction(deps.factory) as session:
        result = upsert_actuals(session, ctx.account_id, rows, source=platform.name, now=ctx.now)
        account = session.get(Account, ctx.account_id)
        assert account is not None
        if rows:
            newest = max(r.hour_start for r in rows) + timedelta(hours=1)
            if account.actuals_fresh_until is None or newest > account.actuals_fresh_until:
                account.actuals_fresh_until = newest
    return {
        "received": result.received,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
    }


def creative_dna(ctx: CycleContext) -> dict[str, Any]:
    """Loop 4: DNA for new creatives (from their features and text; videos arrive by upload)."""
    with transaction(ctx.deps.factory) as session:
        added = ensure_dna(session, ctx.account_id, ctx.now)
    return {"extracted": added}


def validate_predictions(ctx: CycleContext) -> dict[str, Any]:
    """Loop 6: score the predictions whose window has closed, watch drift and data health, and
    retrain through the registry's gate when accuracy or drift demands (loop 5 must be on)."""
    from adflywheel.services.monitor.service import validate_and_maybe_retrain

    retrain = _retrainer(ctx) if 5 in ctx.loops else None
    result = validate_and_maybe_retrain(
        ctx.deps.factory, ctx.account_id, ctx.now, retrain=retrain, alerts=ctx.deps.alert
    )
    keep = (
        "scored",
        "accuracy",
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
    out = {k: result[k] for k in keep if k in result}
    out["breaker_open"] = bool((result.get("breaker") or {}).get("open"))
    return out


def _retrainer(ctx: CycleContext) -> Callable[[Any, int, Any, str], dict[str, Any]]:
    """Loop 6's retrain: a challenger trained as of the run, through the registry's gate."""
    from adflywheel.services.compound.training import train_challenger_and_gate

    def retrain(factory: Any, account_id: int, now: Any, reason: str) -> dict[str, Any]:
        decision = train_challenger_and_gate(
            factory, ctx.deps.settings, account_id, now, reason, actor="cycle/retrain"
        )
        # A refused challenger is an attempt (the old model keeps serving), not a retrain.
        status = {"promoted": "retrained"}.get(decision.status, decision.status)
        return {"status": status, "gate": decision.as_dict()}

    return retrain


def cross_account(ctx: CycleContext) -> dict[str, Any]:
    """Loop 3: contribute noised, clipped gene statistics to the niche (opted-in accounts)."""
    from adflywheel.services.crosslearn.service import contribute_and_publish, privacy_from_settings

    report = contribute_and_publish(
        ctx.deps.factory,
        ctx.account_id,
        ctx.now,
        privacy=privacy_from_settings(ctx.deps.settings),
    )
    out: dict[str, Any] = {
        k: report[k] for k in ("contributed", "niche", "reason", "published") if k in report
    }
    if ctx.hour.hour == 0 and 1 in ctx.loops and report.get("contributed"):
        out["shared_index"] = _sync_shared_memory(ctx)
    return out


def _sync_shared_memory(ctx: CycleContext) -> dict[str, Any]:
    """Once a day: the shared, anonymised winner index of the opted-in accounts (loops 1+3)."""
    from sqlalchemy import select

    from adflywheel.services.memory.service import sync_shared_index
    from adflywheel.store.crosslearn import CrossLearnSettings

    with ctx.deps.factory() as session:
        opted = list(
            session.scalars(
                select(CrossLearnSettings.account_id).where(CrossLearnSettings.opted_in.is_(True))
            )
        )
    result = sync_shared_index(
        ctx.deps.factory, ctx.deps.settings, opted, now=ctx.now, redis=ctx.deps.redis
    )
    return {k: v for k, v in result.items() if isinstance(v, (int, float, str, bool))}


def winner_memory(ctx: CycleContext) -> dict[str, Any]:
    """Loop 1: new winners into the account's memory (FAISS), lapsed ones marked."""
    from adflywheel.services.memory.service import qualify_and_index

    counts = qualify_and_index(
        ctx.deps.factory, ctx.deps.settings, ctx.account_id, ctx.now, redis=ctx.deps.redis
    )
    counts["indexed"] = int(counts.get("qualified", 0)) + int(counts.get("requalified", 0))
    return counts


def compound(ctx: CycleContext) -> dict[str, Any]:
    """Loop 5: a first model (or, with loop 6 off, a daily retrain) through the registry's gate
    at midnight UTC; ensemble weights relearnt every ``WEIGHTS_EVERY_HOURS`` on the latest
    holdout; and this hour's predictions of every active variant, recorded to be scored."""
    from adflywheel.services.compound import service as cs
    from adflywheel.services.compound.training import load_champion, train_challenger_and_gate

    out: dict[str, Any] = {}
    factory, hour = ctx.deps.factory, ctx.hour
    if hour.hour == 0:
        with factory() as session:
            serving = load_champion(session, ctx.account_id) is not None
        if not serving or 6 not in ctx.loops:
            reason = "daily retrain (loop 6 off)" if serving else "no model serving yet"
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
    recorded = cs.predict_and_record(factory, ctx.account_id, hour)
    out["predictions_recorded"] = recorded.get("recorded", recorded.get("rows"))
    return out


WEIGHTS_EVERY_HOURS = 6


def budget_policy(ctx: CycleContext) -> BudgetPolicy:
    """Thompson, with priors for variants that have not delivered yet: the niche's published
    pattern when loop 3 is on, overridden by the compound learner's pre-launch prediction when
    loop 5 is on (it has seen the account's own history as well as the genes)."""
    if ctx.deps.policy is not None:
        return ctx.deps.policy
    seed = ctx.deps.settings.bandit_seed
    providers: list[PriorProvider] = []
    if 3 in ctx.loops:
        from adflywheel.services.crosslearn.priors import NichePriors

        providers.append(NichePriors(ctx.deps.factory))
    if 5 in ctx.loops:
        from adflywheel.services.compound.serving_priors import ServingPriors

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
    """Loop 2: each active campaign's total split by the policy; promotion floors and the
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


def auto_promote(ctx: CycleContext) -> dict[str, Any]:
    """Loop 7 after the reallocation, in the same hour: its idempotency keys are the hour's."""
    report = run_promotion(
        ctx.deps.factory,
        ctx.deps.platform,
        ctx.account_id,
        now=ctx.now,
        actor="promoter/cycle",
        dry_run=ctx.options.dry_run or ctx.deps.platform is None,
    )
    return report.summary()


def always(ctx: CycleContext) -> bool:
    return True


def loop_on(number: int) -> Callable[[CycleContext], bool]:
    def needs(ctx: CycleContext) -> bool:
        return number in ctx.loops

    return needs


def reallocation_on(ctx: CycleContext) -> bool:
    return ctx.deps.policy is not None or 2 in ctx.loops


# (step name, loop number or None for the foundation, the step, when it runs)
STEPS: list[tuple[str, int | None, Step, Callable[[CycleContext], bool]]] = [
    ("sync_catalog", None, sync_catalogue, always),
    ("fetch_actuals", None, fetch_actuals, always),
    ("validate_predictions", 6, validate_predictions, loop_on(6)),
    ("creative_dna", 4, creative_dna, loop_on(4)),
    ("compound", 5, compound, loop_on(5)),
    ("reallocate_budgets", 2, reallocate_budgets, reallocation_on),
    ("auto_promote", 7, auto_promote, loop_on(7)),
    ("cross_account", 3, cross_account, loop_on(3)),
    ("winner_memory", 1, winner_memory, loop_on(1)),
]
