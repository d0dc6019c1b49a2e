"""Budget policies and the one safe way to apply a budget change.

A policy proposes daily budgets for a campaign's ad sets from what the store knows; ``apply``
writes them through the platform with an audit record and an idempotency key, so the same
decision is never applied twice (a retried hour finds its key and skips).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.platforms.base import AdPlatform
from adflywheel.store.engine import transaction
from adflywheel.store.models import AdSet, BudgetChange
from adflywheel.store.queries import VariantTotals


@dataclass(frozen=True, slots=True)
class CampaignState:
    campaign_id: int
    external_id: str
    objective: str
    total_budget_minor: int
    variants: Sequence[VariantTotals]


@dataclass(frozen=True, slots=True)
class Proposal:
    """New daily budgets by ad set external id, with the evidence behind them."""

    budgets: dict[str, int]
    reason: str
    evidence: dict[str, Any]


class BudgetPolicy(Protocol):
    name: str

    def propose(self, campaign: CampaignState, hour: datetime) -> Proposal: ...


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """Integers proportional to ``weights`` that sum exactly to ``total``."""
    if total < 0:
        raise ValueError("total must be non-negative")
    weight_sum = float(sum(weights))
    if not weights or weight_sum <= 0:
        raise ValueError("weights must contain a positive value")
    exact = [total * w / weight_sum for w in weights]
    floors = [int(x) for x in exact]
    short = total - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (floors[i] - exact[i], i))
    for i in order[:short]:
        floors[i] += 1
    return floors


class UniformPolicy:
    """The baseline: split each campaign's total equally over its active variants."""

    name = "uniform"

    def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
        active = [v.status == "ACTIVE" and v.ad_set_status == "ACTIVE" for v in campaign.variants]
        if not any(active):
            return Proposal({}, "uniform", {"note": "no active variant"})
        shares = largest_remainder(campaign.total_budget_minor, [1.0 if a else 0.0 for a in active])
        return Proposal(
            {v.ad_set_external_id: s for v, s in zip(campaign.variants, shares, strict=True)},
            "uniform",
            {"active_variants": sum(active)},
        )


@dataclass(frozen=True, slots=True)
class AppliedChange:
    ad_set_external_id: str
    old_budget_minor: int | None
    new_budget_minor: int
    mode: str


def apply_budgets(
    factory: sessionmaker[Session],
    platform: AdPlatform,
    account_id: int,
    proposal: Proposal,
    *,
    actor: str,
    cycle_hour: datetime | None,
    now: datetime,
    dry_run: bool = False,
) -> list[AppliedChange]:
    """Write changed budgets through the platform, each recorded before and after.

    The record is written as ``pending`` first, then the platform call, then ``applied``: a crash
    in between leaves a pending record that the retry re-applies (setting an absolute budget twice
    is harmless), and an ``applied`` record makes the retry skip.
    """
    changes: list[AppliedChange] = []
    for external_id, new_budget in sorted(proposal.budgets.items()):
        key = (
            f"{actor}:{account_id}:{cycle_hour.isoformat()}:{external_id}"
            if cycle_hour is not None
            else None
        )
        with transaction(factory) as session:
            ad_set = session.scalar(
                select(AdSet).where(
                    AdSet.account_id == account_id, AdSet.external_id == external_id
                )
            )
            if ad_set is None:
                raise ValueError(f"unknown ad set {external_id!r}")
            record = (
                session.scalar(select(BudgetChange).where(BudgetChange.idempotency_key == key))
                if key is not None
                else None
            )
            if record is not None and record.mode in ("applied", "dry_run"):
                continue
            old = ad_set.daily_budget_minor
            if old == new_budget and record is None:
                continue
            if record is None:
                record = BudgetChange(
                    account_id=account_id,
                    ad_set_id=ad_set.id,
                    old_budget_minor=old,
                    new_budget_minor=new_budget,
                    reason=proposal.reason,
                    evidence=proposal.evidence,
                    mode="dry_run" if dry_run else "pending",
                    actor=actor,
                    cycle_hour=cycle_hour,
                    idempotency_key=key,
                    created_at=now,
                )
                session.add(record)
                session.flush()
            record_id, ad_set_id, old_recorded = record.id, ad_set.id, record.old_budget_minor
        if dry_run:
            changes.append(AppliedChange(external_id, old_recorded, new_budget, "dry_run"))
            continue
        platform.set_ad_set_budget(external_id, new_budget)
        with transaction(factory) as session:
            stored = session.get(BudgetChange, record_id)
            assert stored is not None
            stored.mode = "applied"
            ad_set_row = session.get(AdSet, ad_set_id)
            assert ad_set_row is not None
            ad_set_row.daily_budget_minor = new_budget
        changes.append(AppliedChange(external_id, old_recorded, new_budget, "applied"))
    return changes
