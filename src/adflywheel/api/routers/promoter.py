"""Loop 7's endpoints: a stateless check of counts, the promoter's run, its history, approval,
rollback, and the account's guardrails.

The ad platform of an account comes from the app's ``PlatformResolver``. When the account has
no connected platform, the calls that must write (apply, approve, rollback) answer 409, and
everything else still works (evaluation, dry-run, approval mode, history, settings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.api.deps import CallerDep, Services, ServicesDep, SessionDep
from adflywheel.api.openapi import kinds
from adflywheel.api.schemas.promoter import (
    DecisionOut,
    EvaluationOut,
    GuardrailsOut,
    ModeOut,
    PromoterActionOut,
    PromoterActionResultOut,
    PromoterHistoryOut,
    PromotionReportOut,
    StatisticalTestOut,
)
from adflywheel.api.schemas.types import (
    Count,
    ExternalId,
    PathRowId,
    QueryTimestamp,
    Timestamp,
    integral,
)
from adflywheel.core.domain import AccountMode
from adflywheel.core.errors import InvalidInputError
from adflywheel.loops.promoter import (
    Correction,
    DecisionSettings,
    Experiment,
    Guardrails,
    VariantData,
    decide,
)
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.account_settings import replace_guardrails, set_mode
from adflywheel.services.promoter.actions import approve, dismiss, history, rollback
from adflywheel.services.promoter.service import (
    PromoterSettings,
    decision_out,
    load_settings,
    run_promotion,
)
from adflywheel.store.accounts import Caller

router = APIRouter(prefix="/api/ml", tags=["auto-promoter"])

Id = ExternalId
_INPUT = ConfigDict(extra="forbid", allow_inf_nan=False)
_T, _G = DecisionSettings(), Guardrails()
# The mSPRT's mixing sd on the log-ratio scale: below 0.001 it means "no effect is plausible"
# and its square underflows (a 5e-324 sd divided by zero in the confidence sequence).
MIN_MIXING_SD = 1e-3


class PeriodIn(BaseModel):
    model_config = _INPUT
    impressions: Count
    clicks: Count
    intended_share: float | None = Field(
        None, ge=0, le=1, description="The variant's intended share of traffic (budget share)."
    )


class ExperimentVariantIn(BaseModel):
    model_config = _INPUT
    id: Id
    impressions: Count
    clicks: Count
    periods: list[PeriodIn] | None = Field(
        None, max_length=10_000, description="Counts per allocation period, oldest first."
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentVariantIn:
        if self.clicks > self.impressions:
            raise ValueError(f"{self.id}: clicks ({self.clicks}) exceed impressions")
        if self.periods is not None:
            if not self.periods:
                raise ValueError(f"{self.id}: periods, when given, must not be empty")
            if any(p.clicks > p.impressions for p in self.periods):
                raise ValueError(f"{self.id}: a period has more clicks than impressions")
            if (
                sum(p.impressions for p in self.periods) != self.impressions
                or sum(p.clicks for p in self.periods) != self.clicks
            ):
                raise ValueError(f"{self.id}: periods must add up to the cumulative counts")
        return self


class EvaluateIn(BaseModel):
    """Cumulative counts per variant (and optionally per allocation period)."""

    model_config = _INPUT
    control_id: Id | None = None
    variants: list[ExperimentVariantIn] = Field(min_length=1, max_length=1000)
    min_impressions: Count = _T.min_impressions
    confidence: float = Field(_T.confidence, ge=0.5, lt=1.0)
    min_lift: float = Field(_T.min_lift, ge=0.0, le=100.0)
    correction: Correction = _T.correction
    mixing_sd: float | None = Field(None, ge=MIN_MIXING_SD, le=5)

    @model_validator(mode="after")
    def _consistent(self) -> EvaluateIn:
        ids = [v.id for v in self.variants]
        if len(set(ids)) != len(ids):
            raise ValueError("variant ids must be unique")
        if self.control_id is not None and self.control_id not in ids:
            raise ValueError(f"control_id {self.control_id!r} is not among the variants")
        with_periods = [v for v in self.variants if v.periods is not None]
        if with_periods and len(with_periods) != len(self.variants):
            raise ValueError("give periods for every variant or for none")
        if len({len(v.periods or ()) for v in self.variants}) > 1:
            raise ValueError("every variant needs the same number of periods")
        shares = {p.intended_share is None for v in with_periods for p in v.periods or ()}
        if len(shares) > 1:
            raise ValueError("give intended_share for every period or for none")
        return self

    def experiment(self) -> Experiment:
        variants = []
        for v in self.variants:
            periods = v.periods or [PeriodIn(impressions=v.impressions, clicks=v.clicks)]
            shares = [p.intended_share for p in periods]
            variants.append(
                VariantData(
                    v.id,
                    tuple(p.impressions for p in periods),
                    tuple(p.clicks for p in periods),
                    tuple(s for s in shares if s is not None) if None not in shares else None,
                )
            )
        return Experiment("request", self.control_id, tuple(variants))


@router.post("/auto-promote/evaluate")
def evaluate(body: EvaluateIn, _: CallerDep) -> EvaluationOut:
    """Which variants are winners, from counts alone (nothing is stored or changed). Safe to call
    every hour with cumulative counts: the test is always-valid. Like the other stateless
    calculators (``/budget/allocate``), it reads no account's data but needs a key (it costs
    CPU)."""
    try:
        settings = DecisionSettings(
            min_impressions=body.min_impressions,
            confidence=body.confidence,
            min_lift=body.min_lift,
            correction=body.correction,
            mixing_sd=body.mixing_sd,
        )
        decisions = decide([body.experiment()], settings)
    except ValueError as error:  # the counts and settings are the caller's
        raise InvalidInputError(str(error)) from error
    return EvaluationOut(
        winners=[d.variant_id for d in decisions if d.winner],
        losers=[d.variant_id for d in decisions if d.loser],
        variants=[DecisionOut.model_validate(decision_out(d)) for d in decisions],
        test=StatisticalTestOut(
            method="mSPRT on the Mantel-Haenszel log rate ratio (always valid)",
            mixing_sd=settings.tau,
            correction=settings.correction.value,
            confidence=settings.confidence,
        ),
    )


def _platform(services: Services, account_id: int) -> AdPlatform | None:
    """None when the account has no platform that can write: raises it would apply are then
    held back (dry runs and approvals are still recorded), and approve or rollback answer 409."""
    try:
        return services.platforms(account_id)
    except PlatformError:
        return None


class AutoPromoteIn(BaseModel):
    model_config = _INPUT
    campaign_id: Id | None = Field(None, description="One campaign; all active ones when absent.")
    dry_run: bool = Field(False, description="Propose and record only, whatever the settings.")


@router.post("/auto-promote", response_model_exclude_unset=True, responses=kinds(404, 409))
def auto_promote(
    caller: CallerDep, services: ServicesDep, body: AutoPromoteIn | None = None
) -> PromotionReportOut:
    """Find winners in the stored actuals and raise their budgets through the guardrails."""
    body = body or AutoPromoteIn()
    report = run_promotion(
        services.factory,
        _platform(services, caller.account_id),
        caller.account_id,
        now=services.clock.now(),
        campaign_external_id=body.campaign_id,
        actor=f"api:{caller.account_name}",
        dry_run=body.dry_run,
    )
    return PromotionReportOut.model_validate(report.as_dict())


@router.get("/auto-promote/history")
def promotion_history(
    caller: CallerDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    since: QueryTimestamp = None,
) -> PromoterHistoryOut:
    return PromoterHistoryOut(
        actions=[
            PromoterActionOut.model_validate(action)
            for action in history(session, caller.account_id, limit=limit, since=since)
        ]
    )


class _OnAction(Protocol):
    """``approve``, ``rollback`` or ``dismiss``: each acts on one action with the same inputs."""

    def __call__(
        self,
        factory: sessionmaker[Session],
        platform: AdPlatform | None,
        account_id: int,
        action_id: int,
        *,
        now: datetime,
        actor: str,
    ) -> dict[str, Any]: ...


def _act(
    on_action: _OnAction, action_id: int, caller: Caller, services: Services
) -> PromoterActionResultOut:
    result = on_action(
        services.factory,
        _platform(services, caller.account_id),
        caller.account_id,
        action_id,
        now=services.clock.now(),
        actor=f"api:{caller.account_name}",
    )
    return PromoterActionResultOut.model_validate(result)


@router.post("/auto-promote/{action_id}/rollback", responses=kinds(409, 502))
def rollback_action(
    action_id: PathRowId, caller: CallerDep, services: ServicesDep
) -> PromoterActionResultOut:
    """Restore the budget the action replaced, through the platform, as an audited change."""
    return _act(rollback, action_id, caller, services)


@router.post("/auto-promote/{action_id}/approve", responses=kinds(409, 502))
def approve_action(
    action_id: PathRowId, caller: CallerDep, services: ServicesDep
) -> PromoterActionResultOut:
    """Apply a change that waits for approval, if the guardrails still allow it."""
    return _act(approve, action_id, caller, services)


@router.post("/auto-promote/{action_id}/dismiss", responses=kinds(409))
def dismiss_action(
    action_id: PathRowId, caller: CallerDep, services: ServicesDep
) -> PromoterActionResultOut:
    """Turn down a change that waits for approval: nothing is written, the history says who and
    when. Dismissing again answers the first dismissal (``already``)."""
    return _act(dismiss, action_id, caller, services)


Minor = Count
# minor units a day; integral floats (467164.0) are taken as integers
Money = Annotated[int, BeforeValidator(integral), Field(ge=0, lt=2**53, strict=True)]


class FreezeWindowIn(BaseModel):
    """Nothing is written in ``[start, end)`` (UTC), for the account or one campaign."""

    model_config = _INPUT
    start: Timestamp
    end: Timestamp
    campaign: Id | None = None

    @model_validator(mode="after")
    def _ordered(self) -> FreezeWindowIn:
        if not self.start < self.end:
            raise ValueError("a freeze window must end after it starts")
        return self


class GuardrailsIn(BaseModel):
    """The account's promoter settings; a PUT replaces them all (absent fields take defaults).
    Money in minor units per day; null means no limit."""

    model_config = _INPUT
    min_impressions: Minor = _T.min_impressions
    confidence: float = Field(_T.confidence, ge=0.5, lt=1.0)
    min_lift: float = Field(_T.min_lift, ge=0.0, le=100.0)
    correction: Correction = _T.correction
    mixing_sd: float | None = Field(None, ge=MIN_MIXING_SD, le=5)
    loser_min_drop: float = Field(_T.loser_min_drop, ge=0, le=1)
    srm_alpha: float = Field(_T.srm_alpha, gt=0, lt=0.5)
    srm_tolerance: float = Field(_T.srm_tolerance, gt=0, le=1)
    multiplier: float = Field(_G.multiplier, gt=1.0, le=10.0)
    max_variant_budget_minor: Money | None = None
    max_campaign_budget_minor: Money | None = None
    max_account_budget_minor: Money | None = None
    cooldown_hours: float = Field(_G.cooldown_hours, ge=0, le=8760)
    max_changes_per_cycle: Minor = _G.max_changes_per_cycle
    ramp_max_step: float | None = Field(_G.ramp_max_step, gt=0, le=10)
    ramp_min_hours: float = Field(_G.ramp_min_hours, ge=0, le=8760)
    dry_run: bool = _G.dry_run
    approval_threshold_minor: Money | None = _G.approval_threshold_minor
    approval_ttl_hours: float = Field(_G.approval_ttl_hours, gt=0, le=720)
    kill_switch: bool = _G.kill_switch
    campaign_growth: bool = _G.campaign_growth
    max_growth_per_week: float = Field(_G.max_growth_per_week, ge=0, le=10)
    max_edit_step: float | None = Field(_G.max_edit_step, gt=0, le=10)
    edit_dead_band: float = Field(_G.edit_dead_band, ge=0, lt=1)
    min_hours_between_edits: float = Field(_G.min_hours_between_edits, ge=0, le=8760)
    min_hours_between_increases: float = Field(_G.min_hours_between_increases, ge=0, le=8760)
    hands_off_hours: float = Field(_G.hands_off_hours, ge=0, le=8760)
    min_daily_budget_minor: Money | None = None
    excluded_campaigns: list[Id] = Field(default_factory=list, max_length=1000)
    freeze_windows: list[FreezeWindowIn] = Field(default_factory=list, max_length=100)
    holdout_share: float = Field(_G.holdout_share, ge=0, lt=1)
    history_hours: int = Field(24 * 28, ge=1, le=8760, strict=True)


def _settings_out(settings: PromoterSettings) -> GuardrailsOut:
    return GuardrailsOut.model_validate(
        {**settings.to_dict(), "correction": settings.test.correction.value}
    )


@router.get("/accounts/me/guardrails")
def get_guardrails(caller: CallerDep, session: SessionDep) -> GuardrailsOut:
    return _settings_out(load_settings(session, caller.account_id))


@router.put("/accounts/me/guardrails", responses=kinds(409))
def put_guardrails(
    body: GuardrailsIn, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> GuardrailsOut:
    # The mode is switched on its own (PUT /accounts/me/mode); a PUT of the guardrails keeps it,
    # and refuses to leave an account on autopilot without what autopilot needs (409).
    settings = replace_guardrails(
        session,
        caller.account_id,
        body.model_dump(mode="json"),
        now=services.clock.now(),
        actor=f"api:{caller.account_name}",
    )
    return _settings_out(settings)


class ModeIn(BaseModel):
    model_config = _INPUT
    mode: AccountMode


def _mode_out(g: Guardrails) -> ModeOut:
    missing = g.autopilot_problem()
    return ModeOut(mode=g.mode.value, autopilot_ready=missing is None, autopilot_missing=missing)


@router.get("/accounts/me/mode")
def get_mode(caller: CallerDep, session: SessionDep) -> ModeOut:
    """``recommend`` (every new account: decisions computed and shown, nothing written) or
    ``autopilot`` (decisions within the guardrails are written)."""
    return _mode_out(load_settings(session, caller.account_id).guardrails)


@router.put("/accounts/me/mode", responses=kinds(409))
def put_mode(
    body: ModeIn, caller: CallerDep, services: ServicesDep, session: SessionDep
) -> ModeOut:
    """Switch the account's mode. 409 for ``autopilot`` while the guardrails miss what it needs
    (an account-wide daily ceiling); switching to ``recommend`` is always allowed."""
    changed = set_mode(
        session,
        caller.account_id,
        body.mode,
        now=services.clock.now(),
        actor=f"api:{caller.account_name}",
    )
    return _mode_out(changed.guardrails)
