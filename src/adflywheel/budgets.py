"""The budget-policy interface and the one safe way to apply a budget change.

A policy (see ``policies``) proposes daily budgets for a campaign's ad sets from what the store
knows; ``apply_budgets`` writes them through the platform with an audit record and an idempotency
key, so the same decision is never applied twice (a retried hour finds its key and skips).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.platforms.base import AdPlatform
from adflywheel.store.engine import transaction
from adflywheel.store.models import AdSet, BudgetChange, Campaign
from adflywheel.store.queries import HourlySeries, VariantTotals, hourly_series, variant_totals


@dataclass(frozen=True, slots=True)
class CampaignState:
    """What a policy may know of a campaign: totals per variant and, for policies that
    discount old evidence, each variant's hourly series (keyed by internal variant id)."""

    campaign_id: int
    external_id: str
    objective: str
    total_budget_minor: int
    variants: Sequence[VariantTotals]
    hourly: Mapping[int, HourlySeries] = field(default_factory=dict)
    # The composition with the auto-promoter: a promoted ad set keeps at least its promoted
    # budget (by ad set external id) and no ad set goes past the account's ceiling.
    min_budgets: Mapping[str, int] = field(default_factory=dict)
    max_budget_minor: int | None = None


@dataclass(frozen=True, slots=True)
class Proposal:
    """New daily budgets by ad set external id, with the evidence behind them."""

    budgets: dict[str, int]
    reason: str
    evidence: dict[str, Any]


class BudgetPolicy(Protocol):
    @property
    def name(self) -> str: ...

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


@dataclass(frozen=True, slots=True)
class AppliedChange:
    ad_set_external_id: str
    old_budget_minor: int | None
    new_budget_minor: int
    mode: str


def is_active(v: VariantTotals) -> bool:
    """A variant can spend only when both the ad and its ad set are active."""
    return v.status == "ACTIVE" and v.ad_set_status == "ACTIVE"


def load_campaign_state(
    session: Session,
    account_id: int,
    campaign: Campaign,
    until: datetime,
    *,
    evidence_window_hours: int = 24 * 28,
    series: Mapping[int, HourlySeries] | None = None,
    min_budgets: Mapping[str, int] | None = None,
    max_budget_minor: int | None = None,
) -> CampaignState | None:
    """A campaign as budget policies see it, from the store; None when there is nothing to split
    (no active variant with a budget). Pass ``series`` when it was loaded for many campaigns."""
    variants = variant_totals(session, account_id, campaign_id=campaign.id, until=until)
    # Only what active variants may spend is split: a paused ad set keeps its budget untouched
    # (pausing one variant must not silently raise the others' spend).
    total = sum(v.budget_minor or 0 for v in variants if is_active(v))
    if total <= 0:
        return None
    if series is None:
        since = until - timedelta(hours=evidence_window_hours)
        series = hourly_series(session, account_id, since=since, until=until)
    hourly = {v.variant_id: series[v.variant_id] for v in variants if v.variant_id in series}
    own = {v.ad_set_external_id for v in variants}
    return CampaignState(
        campaign.id,
        campaign.external_id,
        campaign.objective,
        total,
        variants,
        hourly,
        {k: b for k, b in (min_budgets or {}).items() if k in own},
        max_budget_minor,
    )


def apply_budgets(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
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
    if platform is None and not dry_run:
        raise ValueError("applying budgets needs a platform; only a dry run can do without")
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
        assert platform is not None
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
