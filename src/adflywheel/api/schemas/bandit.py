"""Answers of the budget routes (loop 2)."""

from __future__ import annotations

from typing import Any

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
