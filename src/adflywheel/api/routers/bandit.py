"""Loop 2's endpoints: stateless allocation, a Thompson draw, and stored-campaign reallocation."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adflywheel.api.deps import CallerDep, ServicesDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.bandit import (
    AdStatusChangeOut,
    AdStatusChangesOut,
    AllocatedVariantOut,
    AllocationOut,
    BudgetChangeOut,
    ReallocationOut,
    ThompsonChoiceOut,
)
from adflywheel.api.schemas.types import Count, ExternalId, PathExternalId, PathRowId, Seed
from adflywheel.core.clock import floor_hour
from adflywheel.core.domain import AccountMode, Objective
from adflywheel.core.errors import ConflictError, InvalidInputError
from adflywheel.loops.bandit import (
    AllocationSettings,
    CampaignEvidence,
    RatePrior,
    VariantEvidence,
    allocate_campaign,
    thompson_select,
)
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.bandit.budgets import apply_budgets, load_campaign_state
from adflywheel.services.bandit.edits import account_bounds, minimums
from adflywheel.services.bandit.pause_log import pause_history, undo_pause
from adflywheel.services.bandit.policies import ThompsonPolicy
from adflywheel.services.bandit.step import settled_proposal
from adflywheel.services.promoter.actions import promotion_floors
from adflywheel.services.promoter.settings import load_settings
from adflywheel.store.catalog import campaign_by_external
from adflywheel.store.engine import transaction

router = APIRouter(prefix="/api/ml", tags=["budget"])

_INPUT = ConfigDict(extra="forbid", allow_inf_nan=False)


class PriorIn(BaseModel):
    model_config = _INPUT
    rate: float = Field(gt=0.0, lt=1.0, description="Predicted CTR, a fraction.")
    strength: float = Field(gt=0.0, description="Worth this many impressions (capped).")


class BudgetVariantIn(BaseModel):
    model_config = _INPUT
    id: ExternalId
    impressions: Count
    clicks: Count
    spend_minor: Count
    conversions: Count = 0
    revenue_minor: Count = 0
    prior: PriorIn | None = None
    active: bool = True
    current_budget_minor: Count | None = None
    min_budget_minor: Count = 0
    max_budget_minor: Count | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BudgetVariantIn:
        if self.clicks > self.impressions:
            raise ValueError(f"clicks ({self.clicks}) exceed impressions ({self.impressions})")
        if self.conversions > self.clicks:
            raise ValueError(
                f"conversions ({self.conversions}) exceed clicks ({self.clicks}); the conversion "
                "rate is modelled per click"
            )
        if self.max_budget_minor is not None and self.min_budget_minor > self.max_budget_minor:
            raise ValueError("min_budget_minor exceeds max_budget_minor")
        return self

    def evidence(self) -> VariantEvidence:
        return VariantEvidence(
            id=self.id,
            impressions=self.impressions,
            clicks=self.clicks,
            spend_minor=self.spend_minor,
            conversions=self.conversions,
            revenue_minor=self.revenue_minor,
            prior=RatePrior(self.prior.rate, self.prior.strength) if self.prior else None,
            active=self.active,
            current_budget_minor=self.current_budget_minor,
            min_budget_minor=self.min_budget_minor,
            max_budget_minor=self.max_budget_minor,
        )


class VariantsIn(BaseModel):
    model_config = _INPUT
    objective: Objective = Objective.CTR
    variants: list[BudgetVariantIn] = Field(min_length=1, max_length=1000)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _unique(self) -> VariantsIn:
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            raise ValueError("variant ids must be unique")
        return self

    def campaign(self) -> CampaignEvidence:
        return CampaignEvidence(
            "request", tuple(v.evidence() for v in self.variants), self.objective
        )


class AllocateIn(VariantsIn):
    total_budget_minor: Count
    floor_share: float = Field(default=0.05, ge=0.0, lt=1.0)
    min_impressions: float = Field(default=1000.0, ge=0.0)
    max_change_fraction: float | None = Field(default=0.5, gt=0.0)
    # How far a variant's prior may move it from a fair share while it is below
    # min_impressions (0: a gated variant is held, whatever is predicted for it).
    prior_tilt: float = Field(default=0.5, ge=0.0, le=1.0)
    n_draws: int = Field(default=1000, ge=100, le=100_000)


@router.post("/budget/allocate")
def allocate(request: AllocateIn, _: CallerDep) -> AllocationOut:
    """Budget shares by the probability of being best; budgets sum exactly to the total. Reads
    no account's data, but costs CPU in proportion to variants × draws: it needs a key."""
    try:
        settings = AllocationSettings(
            n_draws=request.n_draws,
            floor_share=request.floor_share,
            min_impressions=request.min_impressions,
            max_change_fraction=request.max_change_fraction,
            prior_tilt=request.prior_tilt,
        )
        result = allocate_campaign(
            request.campaign(),
            request.total_budget_minor,
            settings,
            np.random.default_rng(request.seed),
        )
    except ValueError as error:  # the evidence and settings are the caller's
        raise InvalidInputError(str(error)) from error
    return AllocationOut(
        objective=result.objective.value,
        total_budget_minor=result.total_budget_minor,
        n_draws=result.n_draws,
        cap_relaxed=result.cap_relaxed,
        floor_relaxed=result.floor_relaxed,
        variants=[
            AllocatedVariantOut(
                id=v.variant_id,
                share=v.share,
                budget_minor=v.budget_minor,
                p_best=v.p_best,
                mean=v.objective_mean,
                interval=[v.objective_low, v.objective_high],
                ctr_mean=v.ctr_mean,
                ctr_interval=[v.ctr_low, v.ctr_high],
                gated=v.gated,
                active=v.active,
            )
            for v in result.variants
        ],
    )


@router.post("/thompson/select")
def select_variant(request: VariantsIn, _: CallerDep) -> ThompsonChoiceOut:
    """One variant drawn by Thompson sampling, for a serving decision."""
    try:
        chosen = thompson_select(
            request.campaign(), AllocationSettings(), np.random.default_rng(request.seed)
        )
    except ValueError as error:  # the evidence is the caller's
        raise InvalidInputError(str(error)) from error
    return ThompsonChoiceOut(variant_id=chosen, objective=request.objective.value)


@router.post("/campaigns/{campaign_id}/reallocate", responses=kinds(409, 502))
def reallocate(
    campaign_id: PathExternalId,
    caller: CallerDep,
    services: ServicesDep,
    dry_run: Annotated[bool, Query(description="Record the proposal; change nothing.")] = False,
) -> ReallocationOut:
    """Thompson reallocation of a stored campaign under the account's guardrails (ceilings,
    promotion floors, edit rules, kill switch, freeze windows), written through the account's
    platform. With ``dry_run`` the proposal is recorded and nothing is written; in recommend mode
    each change is recorded as a recommendation to approve or dismiss within the hour
    (``/api/ml/budget-changes``)."""
    now = services.clock.now()
    with transaction(services.factory) as session:
        campaign = campaign_by_external(session, caller.account_id, campaign_id)
        if campaign is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no campaign {campaign_id!r}")
        g = load_settings(session, caller.account_id).guardrails
        # Recommend mode records recommendations a person may approve this hour.
        recommend = g.mode is AccountMode.RECOMMEND and not dry_run
        dry_run = dry_run or recommend
        if not dry_run and (g.kill_switch or g.frozen(now, campaign_id)):
            raise ConflictError(
                "the account's kill switch is on" if g.kill_switch else "a freeze window is on"
            )
        platform = None
        if not dry_run:
            try:
                platform = services.platforms(caller.account_id)
            except PlatformError as error:
                raise HTTPException(status.HTTP_409_CONFLICT, detail=str(error)) from error
        bounds = account_bounds(session, platform, caller.account_id, g, now, dry_run=dry_run)
        floors = promotion_floors(session, caller.account_id, now)
        state = load_campaign_state(
            session,
            caller.account_id,
            campaign,
            floor_hour(now),
            min_budgets=minimums(floors, bounds),
            max_budget_minor=g.max_variant_budget_minor,
            max_budgets={k: b.high for k, b in bounds.items()},
        )
    if state is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"campaign {campaign_id!r} has no active variant with a daily budget to split",
        )
    policy = ThompsonPolicy(seed=services.settings.bandit_seed)
    try:
        proposal = policy.propose(state, now)
    except ValueError as error:  # the campaign's stored state cannot be split as it stands
        raise InvalidInputError(str(error)) from error
    proposal = settled_proposal(proposal, state, bounds, g.edit_dead_band)
    changes = apply_budgets(
        services.factory,
        platform,
        caller.account_id,
        proposal,
        actor="api/reallocate",
        cycle_hour=None,
        now=now,
        dry_run=dry_run,
        recommend=recommend,
    )
    return ReallocationOut(
        campaign_id=campaign_id,
        dry_run=dry_run,
        total_budget_minor=state.total_budget_minor,
        budgets=proposal.budgets,
        changes=[
            BudgetChangeOut(
                ad_set_id=c.ad_set_external_id,
                old_budget_minor=c.old_budget_minor,
                new_budget_minor=c.new_budget_minor,
                mode=c.mode,
            )
            for c in changes
        ],
        evidence=proposal.evidence,
    )


@router.get("/ad-status-changes", response_model_exclude_unset=True)
def ad_status_changes(
    caller: CallerDep,
    services: ServicesDep,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="Newest first, at most this many.")
    ] = 100,
) -> AdStatusChangesOut:
    """The ads the service paused (or proposed to pause, or a person re-activated), newest first,
    each with the evidence that decided it."""
    with services.factory() as session:
        rows = pause_history(session, caller.account_id, limit)
    return AdStatusChangesOut.model_validate({"changes": rows})


@router.post("/ad-status-changes/{change_id}/rollback", responses=kinds(404, 409, 502))
def rollback_ad_status_change(
    change_id: PathRowId, caller: CallerDep, services: ServicesDep
) -> AdStatusChangeOut:
    """Re-activate an ad the service paused, through the platform, as an audited change; the
    cycle never pauses that ad again. Only an applied pause can be rolled back (409 otherwise, or
    without a connected platform)."""
    try:
        platform: AdPlatform | None = services.platforms(caller.account_id)
    except PlatformError:
        platform = None  # whose change it is is checked first (404), then this (409)
    result = undo_pause(
        services.factory,
        platform,
        caller.account_id,
        change_id,
        now=services.clock.now(),
        actor=f"api:{caller.account_name}",
    )
    return AdStatusChangeOut.model_validate(result)
