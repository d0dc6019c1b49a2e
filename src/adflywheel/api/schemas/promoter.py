"""Answers of the auto-promoter routes (loop 7)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from adflywheel.api.schemas.base import Answer


class SrmOut(Answer):
    """The sample-ratio check of the variant against its control."""

    checked: bool
    mismatch: bool
    observed_share: float
    expected_share: float
    p_value: float
    chi2_p_value: float


class DecisionOut(Answer):
    """One variant's verdict against its control, with the evidence."""

    id: str
    campaign_id: str
    control: str
    winner: bool
    loser: bool
    reason: str
    detail: str
    lift: float
    interval: list[float]
    confidence: float
    p_value: float
    adjusted_p_value: float
    e_value: float
    impressions: int
    clicks: int
    control_impressions: int
    control_clicks: int
    variant_rate: float
    control_rate: float
    srm: SrmOut


class StatisticalTestOut(Answer):
    method: str
    mixing_sd: float
    correction: str
    confidence: float


class EvaluationOut(Answer):
    winners: list[str]
    losers: list[str]
    variants: list[DecisionOut]
    test: StatisticalTestOut


class PromotedOut(Answer):
    """A budget raise made (``applied``) or proposed (``dry_run``, ``pending_approval``)."""

    action_id: int
    variant: str
    unit: Literal["ad", "ad_set"] = Field(
        description="what won: an ad, or an ad set whose ads share its budget and were judged "
        "together (then ``variant`` is the ad set's id)"
    )
    ad_set_id: str
    campaign_id: str
    old_budget_minor: int
    new_budget_minor: int
    target_minor: int
    lift: float
    confidence: float
    interval: list[float]
    mode: str
    rule: str
    guardrails: list[str]
    funded_by: list[FundingOut] = Field(default_factory=list)  # decreases that pay for it


class FundingOut(Answer):
    """One ad set's decrease that funds a promotion inside its campaign."""

    ad_set_id: str
    old: int
    new: int


class HeldBackOut(Answer):
    """A winner whose raise a guardrail (``reason``) held back."""

    variant: str
    ad_set_id: str
    reason: str
    detail: str


class ReconciledOut(Answer):
    """An earlier pending change settled by this run; ``error`` when the platform refused it."""

    action_id: int
    mode: str
    error: str | None = None


class PromotionReportOut(Answer):
    cycle_hour: str
    dry_run: bool
    kill_switch: bool
    campaigns: list[str]
    winners_found: int
    winners: list[DecisionOut]
    losers: list[DecisionOut]
    promoted: list[PromotedOut]
    total_budget_allocated: int
    budget_added_minor: int
    held_back: list[HeldBackOut]
    reconciled: list[ReconciledOut]
    variants: list[DecisionOut]


class PromoterActionOut(Answer):
    """An audited budget change of the promoter (a raise, a ramp step or a rollback)."""

    action_id: int
    created_at: str
    cycle_hour: str | None
    variant: str | None
    ad_set_id: str
    old_budget_minor: int | None
    new_budget_minor: int
    mode: str
    reason: str
    actor: str
    evidence: dict[str, Any]


class PromoterActionResultOut(PromoterActionOut):
    """``already``: the action had been approved or rolled back before; nothing changed now."""

    already: bool


class PromoterHistoryOut(Answer):
    actions: list[PromoterActionOut]


class FreezeWindowOut(Answer):
    start: str
    end: str
    campaign: str | None


class ModeOut(Answer):
    """The account's mode: ``recommend`` (decisions shown, nothing written) or ``autopilot``."""

    mode: str
    autopilot_ready: bool
    autopilot_missing: str | None


class GuardrailsOut(Answer):
    """The account's promoter settings (money in minor units per day; null: no limit)."""

    min_impressions: int
    confidence: float
    min_lift: float
    correction: str
    mixing_sd: float | None
    loser_min_drop: float
    srm_alpha: float
    srm_tolerance: float
    mode: str
    multiplier: float
    max_variant_budget_minor: int | None
    max_campaign_budget_minor: int | None
    max_account_budget_minor: int | None
    cooldown_hours: float
    max_changes_per_cycle: int
    ramp_max_step: float | None
    ramp_min_hours: float
    dry_run: bool
    approval_threshold_minor: int | None
    approval_ttl_hours: float
    kill_switch: bool
    campaign_growth: bool
    max_growth_per_week: float
    max_edit_step: float | None
    edit_dead_band: float
    min_hours_between_edits: float
    min_hours_between_increases: float
    hands_off_hours: float
    min_daily_budget_minor: int | None
    excluded_campaigns: list[str]
    freeze_windows: list[FreezeWindowOut]
    holdout_share: float
    history_hours: int
