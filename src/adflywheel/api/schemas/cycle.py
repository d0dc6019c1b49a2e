"""Answers of the self-learning cycle and power-level routes. A step's report says what that
loop did this hour and differs per loop: each stays an open object."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from adflywheel.api.schemas.base import Answer


class DecidedCountsOut(Answer):
    """What became of the hour's decided changes: written (``applied``), recorded as a dry run,
    waiting for a person's approval, or recorded as a recommendation (recommend mode)."""

    decided: int
    applied: int
    dry_run: int
    awaiting_approval: int
    recommended: int


class ReasonOut(Answer):
    code: str = Field(
        description="kill_switch, freeze, excluded, holdout, structure, "
        "no_budget, undecidable, no_change, edit_rules, dry_run, no_platform, "
        "awaiting_approval, loop_off, or error (failed)"
    )
    message: str


class ChangeOut(Answer):
    object_id: str = Field(description="The ad set (budget) or ad (status) changed.")
    kind: Literal["budget", "status"]
    old: int | str | None
    new: int | str


class CampaignOutcomeOut(Answer):
    """What became of one active campaign this hour (docs/safety.md, "Campaign outcomes")."""

    campaign_id: str
    structure: Literal["ad_set_budgets", "ad_set_budgets_multi_ad", "campaign_budget", "mixed"]
    outcome: Literal["acted", "recommended", "held", "failed"]
    reason: ReasonOut | None
    changes: list[ChangeOut]


class CycleReportOut(Answer):
    """One account's hour: the headline figures, then every step's report (``loops``)."""

    account_id: int
    hour_start: str
    status: str
    skipped: bool
    recovered: bool
    dry_run: bool
    power_level: int
    loops_active: list[int]
    accuracy: float | None
    calibration: float | None
    normalized_entropy: float | None
    retrained: bool
    retrain_reason: str | None
    dna_extracted: int
    winners_indexed: int
    winners_promoted: int
    budgets_changed: int
    ads_paused: int = Field(
        0, description="Clear losers paused on the platform this hour, inside shared budgets."
    )
    budget_changes: DecidedCountsOut
    promotions: DecidedCountsOut
    total_budget_allocated: int
    campaigns: list[CampaignOutcomeOut] = Field(
        default_factory=list, description="Every active campaign's outcome this hour."
    )
    loops: dict[str, dict[str, Any]]
    errors: dict[str, str]


class CycleFailureOut(Answer):
    """An account whose cycle did not run (``busy``) or failed; the others still ran."""

    account_id: int
    status: str
    error: str | None


class AllAccountsCycleOut(Answer):
    accounts: int
    reports: list[CycleReportOut | CycleFailureOut]


class LastRunOut(Answer):
    hour: str
    step: str
    status: str | None
    seconds: float | None
    error: str | None


class LoopPowerOut(Answer):
    loop: int
    name: str
    what: str
    active: bool
    off_reason: str | None = Field(
        None,
        description="Why the loop is off: not chosen, or not installed (loop 4 without the "
        "adflywheel[dna] extra); null when it is on.",
    )
    last_run: LastRunOut | None


class PowerOut(Answer):
    power_level: int
    loops: list[LoopPowerOut]
