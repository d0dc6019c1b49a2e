"""Answers of the budget-change log and its actions (recommendations approved, dismissed, rolled
back; issue #18)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from adflywheel.api.schemas.base import Answer


class BudgetChangeLogOut(Answer):
    """One budget change the service made, recommended, proposed or saw made by hand, with the
    decision's evidence. Money in minor units a day, times UTC (ISO 8601)."""

    change_id: int
    created_at: str
    cycle_hour: str | None
    campaign_id: str
    campaign_name: str
    ad_set_id: str
    ad_set_name: str
    old_budget_minor: int | None
    new_budget_minor: int
    delta_minor: int
    reason: str = Field(
        description="the policy (``thompson``…), ``promoter:*``, ``budget:rollback``, "
        "``external_edit``"
    )
    mode: str = Field(
        description="recommended (approvable this hour), applied, pending, dry_run, expired, "
        "dismissed, rolled_back, observed, pending_approval, abandoned"
    )
    actor: str = Field(description="who made the row what it is (the approver, the cycle…)")
    recommended_by: str | None
    decided_by: str | None = Field(description="who approved or dismissed it")
    decided_at: str | None
    expires_at: str | None = Field(description="a recommendation: the end of its hour")
    can_approve: bool
    can_rollback: bool
    ad_set_evidence: dict[str, Any] | None = Field(
        description="this ad set's part of the evidence (P(best), interval, gated)"
    )
    evidence: dict[str, Any]


class BudgetChangeResultOut(BudgetChangeLogOut):
    """``already``: approved, dismissed or rolled back by an earlier call; nothing changed now."""

    already: bool


class BudgetChangesOut(Answer):
    changes: list[BudgetChangeLogOut] = Field(description="Newest first.")
