"""The budget-policy interface and the one safe way to apply a budget change.

A policy (see ``policies``) proposes daily budgets for a campaign's ad sets from what the store
knows; ``apply_budgets`` writes them through the platform with an audit record and an idempotency
key, so the same decision is never applied twice (a retried hour finds its key and skips).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.platforms.base import AdPlatform
from adflywheel.services.bandit.arms import ad_set_arms, reclaim_from_paused
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
    # The edit rules' upper bound per ad set (external id), tighter than the ceiling.
    max_budgets: Mapping[str, int] = field(default_factory=dict)
    # Arms that stand for an ad set of several ads (by the arm's variant id, see ``ad_set_arms``):
    # a prior predicted for one creative does not describe their mix.
    pooled: frozenset[int] = frozenset()
    # Paused arms' budgets as they are to be lowered (by ad set external id): what they give
    # up is in ``total_budget_minor``, so the campaign's total is kept (see ``reclaimed``).
    reclaimed: Mapping[str, int] = field(default_factory=dict)

    def max_for(self, ad_set_external_id: str) -> int | None:
        """The most this ad set may get: its edit bound, the account's per-variant ceiling."""
        bounds = (self.max_budget_minor, self.max_budgets.get(ad_set_external_id))
        known = [b for b in bounds if b is not None]
        return min(known) if known else None


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
    max_budgets: Mapping[str, int] | None = None,
    total_budget_minor: int | None = None,
    totals: Sequence[VariantTotals] | None = None,
) -> CampaignState | None:
    """A campaign as budget policies see it, from the store: one arm per ad set with a daily
    budget (``ad_set_arms``); None when there is nothing to split (no active arm with a budget).
    Pass ``series`` when it was loaded for many campaigns, and ``total_budget_minor`` to split a
    total other than today's active budgets (the campaign's target, see ``targets``). Pass
    ``totals`` (the account's ``variant_totals`` until ``until``) when it was read for many
    campaigns: one query per account instead of one per campaign."""
    if totals is not None:
        variants = [v for v in totals if v.campaign_id == campaign.id]
    else:
        variants = variant_totals(session, account_id, campaign_id=campaign.id, until=until)
    if series is None:
        since = until - timedelta(hours=evidence_window_hours)
        series = hourly_series(session, account_id, since=since, until=until)
    arms, hourly, pooled = ad_set_arms(variants, series)
    # Only what active arms may spend is split, plus what paused arms give up (``reclaimed``).
    active = [v for v in arms if is_active(v)]
    active_total = sum(v.budget_minor or 0 for v in active)
    if active_total <= 0:
        return None
    own = {v.ad_set_external_id for v in arms}
    lows = {k: b for k, b in (min_budgets or {}).items() if k in own}
    highs = {k: b for k, b in (max_budgets or {}).items() if k in own}
    state = CampaignState(
        campaign.id,
        campaign.external_id,
        campaign.objective,
        active_total,
        arms,
        hourly,
        lows,
        max_budget_minor,
        highs,
        frozenset(pooled),
    )
    paused = {v.ad_set_external_id: v.budget_minor or 0 for v in arms if not is_active(v)}
    room = [state.max_for(v.ad_set_external_id) for v in active]
    absorbable = None if None in room else sum(r or 0 for r in room) - active_total
    give_up = reclaim_from_paused(paused, lows, absorbable)
    if not give_up:
        return state
    total = active_total + sum(paused[k] - b for k, b in give_up.items())
    return replace(state, total_budget_minor=total, reclaimed=give_up)


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
    recommend: bool = False,
) -> list[AppliedChange]:
    """Write changed budgets through the platform, each recorded before and after.

    ``recommend`` (recommend mode; implies writing nothing): the changes are recorded as
    ``recommended``, for a person to approve or dismiss during this hour
    (``recommendations``), under keys of their own (``...:rec``).

    All changes are first recorded as ``pending`` in one transaction, then each platform call is
    made, then the ones that went through are marked ``applied`` (also when a later call fails).
    A crash in between leaves pending records that the retry re-applies (setting an absolute
    budget twice is harmless), and an ``applied`` record makes the retry skip.
    """
    dry_run = dry_run or recommend
    if platform is None and not dry_run:
        raise ValueError("applying budgets needs a platform; only a dry run can do without")
    record_mode = "recommended" if recommend else "dry_run" if dry_run else "pending"
    planned = _record_pending(
        factory,
        account_id,
        proposal,
        actor=actor,
        cycle_hour=cycle_hour,
        now=now,
        record_mode=record_mode,
    )
    if dry_run:
        return [AppliedChange(p.external_id, p.old, p.new, record_mode) for p in planned]
    assert platform is not None
    done: list[_Planned] = []
    try:
        # Decreases first: between two writes the campaign never spends above its total.
        for item in sorted(planned, key=lambda p: (p.new - (p.old or 0), p.external_id)):
            platform.set_ad_set_budget(item.external_id, item.new)
            done.append(item)
    finally:
        if done:
            with transaction(factory) as session:
                mark_applied(session, [(p.record_id, p.ad_set_id, p.new) for p in done])
    return [AppliedChange(p.external_id, p.old, p.new, "applied") for p in done]


def mark_applied(session: Session, done: Sequence[tuple[int, int, int]]) -> None:
    """Records ``(record id, ad set id, budget)`` that reached the platform: the records marked
    ``applied`` and the ad sets' stored budgets set, in two statements (not two per change)."""
    if not done:
        return
    session.execute(
        update(BudgetChange)
        .where(BudgetChange.id.in_([record_id for record_id, _, _ in done]))
        .values(mode="applied")
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(AdSet).execution_options(synchronize_session=False),
        [{"id": ad_set_id, "daily_budget_minor": budget} for _, ad_set_id, budget in done],
    )


@dataclass(frozen=True, slots=True)
class _Planned:
    external_id: str
    record_id: int
    ad_set_id: int
    old: int | None
    new: int


def _record_pending(
    factory: sessionmaker[Session],
    account_id: int,
    proposal: Proposal,
    *,
    actor: str,
    cycle_hour: datetime | None,
    now: datetime,
    record_mode: str,
) -> list[_Planned]:
    """One transaction: a record per change still to make.

    When this hour's decision for these ad sets was made already (any record under the hour's
    keys), it stands: its ``pending`` records are re-sent with their *recorded* budgets and the
    new proposal is ignored, because a proposal computed after a crash sees a half-changed
    campaign and would break the total the recorded decision conserved.

    A dry run's records have keys of their own (``...:dry``, as the promoter's; a
    recommendation's ``...:rec``): a dry run of an hour never blocks its real run, and a
    repeated dry run answers its recorded decision.
    """
    with transaction(factory) as session:
        ad_sets = {
            a.external_id: a
            for a in session.execute(
                select(AdSet.id, AdSet.external_id, AdSet.daily_budget_minor).where(
                    AdSet.account_id == account_id,
                    AdSet.external_id.in_(list(proposal.budgets)),
                )
            )
        }
        missing = sorted(set(proposal.budgets) - set(ad_sets))
        if missing:
            raise ValueError(f"unknown ad set {missing[0]!r}")
        suffix = {"dry_run": ":dry", "recommended": ":rec"}.get(record_mode, "")
        keys = {
            external_id: f"{actor}:{account_id}:{cycle_hour.isoformat()}:{external_id}{suffix}"
            for external_id in proposal.budgets
            if cycle_hour is not None
        }
        existing = {
            r.idempotency_key: r
            for r in session.scalars(
                select(BudgetChange).where(BudgetChange.idempotency_key.in_(list(keys.values())))
            )
        }
        if existing:
            # Still to send: a real decision's pending records; a dry run's: all it recorded.
            wanted = record_mode
            by_id = {a.id: a.external_id for a in ad_sets.values()}
            return [
                _Planned(
                    by_id[r.ad_set_id], r.id, r.ad_set_id, r.old_budget_minor, r.new_budget_minor
                )
                for r in sorted(existing.values(), key=lambda r: by_id[r.ad_set_id])
                if r.mode == wanted
            ]
        changes = [
            (external_id, ad_sets[external_id], new_budget)
            for external_id, new_budget in sorted(proposal.budgets.items())
            if ad_sets[external_id].daily_budget_minor != new_budget
        ]
        if not changes:
            return []
        # One INSERT for the campaign's changes (an ad set at most once in a proposal, so the
        # ids are matched by ad set: no need for the rows to come back in order).
        ids = session.execute(
            insert(BudgetChange).returning(BudgetChange.ad_set_id, BudgetChange.id),
            [
                {
                    "account_id": account_id,
                    "ad_set_id": ad_set.id,
                    "old_budget_minor": ad_set.daily_budget_minor,
                    "new_budget_minor": new_budget,
                    "reason": proposal.reason,
                    "evidence": proposal.evidence,
                    "mode": record_mode,
                    "actor": actor,
                    "cycle_hour": cycle_hour,
                    "idempotency_key": keys.get(external_id),
                    "created_at": now,
                }
                for external_id, ad_set, new_budget in changes
            ],
        ).all()
    record_of = {ad_set_id: record_id for ad_set_id, record_id in ids}
    return [
        _Planned(external_id, record_of[ad_set.id], ad_set.id, ad_set.daily_budget_minor, new)
        for external_id, ad_set, new in changes
    ]


def finish_stale_pending(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    actor_prefix: str,
    before: datetime,
) -> int:
    """Finish reallocation records left ``pending`` by a crashed hour nobody re-ran: send their
    *recorded* budgets, so that hour's split (which conserved the campaign's total) is complete
    before a new one is decided from it. Without a platform they stay pending. Returns how many."""
    if platform is None:
        return 0
    with transaction(factory) as session:
        stale = session.scalars(
            select(BudgetChange)
            .where(
                BudgetChange.account_id == account_id,
                BudgetChange.mode == "pending",
                BudgetChange.actor.startswith(actor_prefix),
                BudgetChange.cycle_hour < before,
            )
            .order_by(BudgetChange.id)
        ).all()
        todo = [(r.id, r.ad_set_id, r.new_budget_minor) for r in stale]
        external = {
            a.id: a.external_id
            for a in session.scalars(select(AdSet).where(AdSet.id.in_([t[1] for t in todo])))
        }
    done: list[tuple[int, int, int]] = []
    try:
        for record_id, ad_set_id, budget in todo:
            platform.set_ad_set_budget(external[ad_set_id], budget)
            done.append((record_id, ad_set_id, budget))
    finally:
        if done:
            with transaction(factory) as session:
                mark_applied(session, done)
    return len(done)
