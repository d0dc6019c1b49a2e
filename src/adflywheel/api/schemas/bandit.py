"""Answers of the budget routes (loop 2)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from adflywheel.api.schemas.base import Answer


class AllocatedVariantOut(Answer):
    """A variant's budget and the posterior behind it: ``mean``/``interval`` in the objective's
    unit, ``ctr_mean``/``ctr_interval`` as fractions."""

    id: str
    share: float
    budget_minor: int
    p_best: float
    mean: float
    interval: list[float]
    ctr_mean: float
    ctr_interval: list[float]
    gated: bool
    active: bool


class AllocationOut(Answer):
    objective: str
    total_budget_minor: int
    n_draws: int
    cap_relaxed: bool
    floor_relaxed: bool
    variants: list[AllocatedVariantOut]


class ThompsonChoiceOut(Answer):
    variant_id: str
    objective: str


class BudgetChangeOut(Answer):
    """One ad set's budget write: ``mode`` says whether it was applied or only recorded."""

    ad_set_id: str
    old_budget_minor: int | None
    new_budget_minor: int
    mode: str


class ReallocationOut(Answer):
    campaign_id: str
    dry_run: bool
    total_budget_minor: int
    budgets: dict[str, int]
    changes: list[BudgetChangeOut]
    evidence: dict[str, Any]


class AdStatusChangeOut(Answer):
    """An ad status the service changed or proposed (a pause of a clear loser inside a shared
    budget), or a person's rollback of one, with its evidence."""

    change_id: int
    ad_id: str
    old_status: str
    new_status: str
    reason: str = Field(description="``pause:clear_loser``, or ``rollback``")
    mode: str = Field(
        description="applied, recommended, dry_run, pending, abandoned or rolled_back"
    )
    actor: str
    cycle_hour: str | None
    created_at: str
    evidence: dict[str, Any]
    already: bool | None = Field(
        None, description="On a rollback: true when an earlier call had already rolled it back."
    )


class AdStatusChangesOut(Answer):
    changes: list[AdStatusChangeOut] = Field(description="Newest first.")
