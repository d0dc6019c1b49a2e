"""The campaigns pages' views: the list (structure, last outcome, the week's delivery) and one
campaign (its ads with P(best), CTR and interval, the evidence gate; budget shares over time;
the budget-change log; the recommendations still open).

The log and the recommendations are the bandit services' (``services/bandit/recommendations``);
P(best) and the gate are the latest reallocation's own evidence, as it decided them; budgets
over time are rebuilt from the audit log the way the promoter rebuilds them. Every query is a
GROUP BY or reads one campaign's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adflywheel.console.views.activity import Money, actor_words, ad_set_labels, lift_words
from adflywheel.core.clock import floor_hour
from adflywheel.core.domain import BudgetStructure
from adflywheel.core.errors import NotFoundError
from adflywheel.loops.monitor import ctr_interval
from adflywheel.services.bandit.recommendations import (
    NOT_REALLOCATION,
    RECOMMENDED,
    _mode_filter,
    budget_change_log,
    pending_recommendations,
)
from adflywheel.store.catalog import campaign_by_external
from adflywheel.store.models import (
    Account,
    AdSet,
    BudgetChange,
    Campaign,
    CycleRun,
    Variant,
)
from adflywheel.store.queries import (
    campaign_structures,
    campaign_variant_totals,
    campaigns_of,
)
from adflywheel.store.rollups import Sums, campaign_sums, day_start

LIST_DAYS = 7  # the list's delivery columns: the last 7 UTC days, today's hours so far included
DETAIL_DAYS = 30  # the detail's totals and share chart
LOG_LIMIT = 50

STRUCTURE_WORDS = {
    BudgetStructure.AD_SET_BUDGETS.value: ("ABO", "ad set budgets, one ad each"),
    BudgetStructure.AD_SET_BUDGETS_MULTI_AD.value: ("ABO", "ad set budgets shared by several ads"),
    BudgetStructure.CAMPAIGN_BUDGET.value: ("CBO", "a campaign budget: Meta splits it"),
    BudgetStructure.MIXED.value: (
        "Mixed",
        "some ad sets have budgets, others share the campaign's",
    ),
}
OUTCOME_WORDS = {
    "acted": "Changed budgets",
    "recommended": "Recommended changes",
    "held": "Held",
    "failed": "Failed",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a campaign in the last hour the cycle ran."""

    hour: datetime
    outcome: str  # acted | recommended | held | failed
    words: str
    reason: str | None
    changes: int


@dataclass(frozen=True, slots=True)
class CampaignRow:
    external_id: str
    name: str
    status: str
    objective: str
    structure: str | None  # ABO | CBO | Mixed; None for an inactive campaign
    structure_detail: str | None
    ads: int  # active ads
    spend_minor: int  # last LIST_DAYS days
    impressions: int
    clicks: int
    conversions: int
    pending: int  # recommendations still open this hour
    last: Outcome | None


@dataclass(frozen=True, slots=True)
class CampaignList:
    account_id: int
    currency: str
    since: datetime
    rows: tuple[CampaignRow, ...]
    pending_total: int


def last_outcomes(session: Session, account_id: int) -> dict[str, Outcome]:
    """Each campaign's outcome in the latest finished cycle report that lists campaigns."""
    row = session.execute(  # only the report's campaigns: the loops' part can be large
        select(CycleRun.hour_start, CycleRun.report["campaigns"])
        .where(CycleRun.account_id == account_id, CycleRun.status != "running")
        .order_by(CycleRun.hour_start.desc())
        .limit(1)
    ).first()
    if row is None:
        return {}
    hour, campaigns = row
    out: dict[str, Outcome] = {}
    for item in campaigns if isinstance(campaigns, list) else []:
        if not isinstance(item, dict) or "campaign_id" not in item:
            continue
        reason = item.get("reason")
        message = reason.get("message") if isinstance(reason, dict) else None
        outcome = str(item.get("outcome"))
        out[str(item["campaign_id"])] = Outcome(
            hour,
            outcome,
            OUTCOME_WORDS.get(outcome, outcome),
            message,
            len(item.get("changes") or []),
        )
    return out


def open_recommendations(session: Session, account_id: int, now: datetime) -> dict[str, int]:
    """How many recommendations each campaign has open now (the services' rule for "still
    approvable": recommended during this UTC hour), counted in SQL."""
    rows = session.execute(
        select(Campaign.external_id, func.count())
        .select_from(BudgetChange)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .join(Campaign, Campaign.id == AdSet.campaign_id)
        .where(BudgetChange.account_id == account_id, _mode_filter(RECOMMENDED, now))
        .group_by(Campaign.external_id)
    ).all()
    return {str(c): int(n) for c, n in rows}


def build_campaign_list(session: Session, account_id: int, now: datetime) -> CampaignList:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}")
    first_day = now.astimezone(UTC).date() - timedelta(days=LIST_DAYS - 1)
    since = day_start(first_day)
    structures = campaign_structures(session, account_id)
    sums = campaign_sums(session, account_id, since_day=first_day)
    outcomes = last_outcomes(session, account_id)
    active_ads = dict(
        session.execute(
            select(Variant.campaign_id, func.count())
            .join(AdSet, AdSet.id == Variant.ad_set_id)
            .where(
                Variant.account_id == account_id,
                Variant.status == "ACTIVE",
                AdSet.status == "ACTIVE",
            )
            .group_by(Variant.campaign_id)
        ).all()
    )
    pending = open_recommendations(session, account_id, now)
    rows = []
    for c in campaigns_of(session, account_id):
        structure = structures.get(c.external_id)
        words = STRUCTURE_WORDS.get(structure.value) if structure is not None else None
        found = sums.get(c.id) or Sums()
        spend, impressions, clicks = found.spend_minor, found.impressions, found.clicks
        conversions = found.conversions
        rows.append(
            CampaignRow(
                c.external_id,
                c.name or c.external_id,
                c.status,
                c.objective,
                words[0] if words else None,
                words[1] if words else None,
                int(active_ads.get(c.id, 0)),
                spend,
                impressions,
                clicks,
                conversions,
                pending.get(c.external_id, 0),
                outcomes.get(c.external_id),
            )
        )
    rows.sort(key=lambda r: (r.status != "ACTIVE", -r.spend_minor, r.name))
    return CampaignList(account_id, account.currency, since, tuple(rows), sum(pending.values()))


@dataclass(frozen=True, slots=True)
class AdRow:
    """One ad of the campaign: delivery over the detail's window and what the bandit thinks."""

    external_id: str
    name: str
    ad_set_external_id: str
    ad_set_label: str
    status: str  # the ad's, or PAUSED when its ad set is paused
    is_control: bool
    budget_minor: int | None
    budget_share: float | None  # of the campaign's active ad set budgets
    impressions: int
    clicks: int
    spend_minor: int
    conversions: int
    ctr: float | None
    ctr_low: float | None
    ctr_high: float | None
    p_best: float | None  # from the latest reallocation's evidence
    gated: bool | None  # below the evidence gate: its budget is held, never raised


@dataclass(frozen=True, slots=True)
class ShareSeries:
    """Each ad set's share of the campaign's budget at the end of each local day."""

    days: tuple[date, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]  # (label, one share per day)


@dataclass(frozen=True, slots=True)
class ChangeRow:
    id: int
    at: datetime
    label: str
    old_minor: int | None
    new_minor: int
    delta_minor: int
    mode: str  # as read now (a recommendation of an earlier hour reads expired)
    reason: str
    who: str
    why: str  # the evidence in words
    expires_at: datetime | None
    can_approve: bool
    can_rollback: bool
    is_promotion: bool


@dataclass(frozen=True, slots=True)
class CampaignDetail:
    account_id: int
    currency: str
    external_id: str
    name: str
    status: str
    objective: str
    structure: str | None
    structure_detail: str | None
    since: datetime
    ads: tuple[AdRow, ...]
    evidence_at: datetime | None  # when the P(best) shown was decided
    shares: ShareSeries
    pending: tuple[ChangeRow, ...]
    log: tuple[ChangeRow, ...]
    last: Outcome | None

    @property
    def empty(self) -> bool:
        return not self.ads


def _latest_evidence(session: Session, campaign_id: int) -> tuple[dict[str, Any], datetime | None]:
    """The newest reallocation record's evidence in the campaign (P(best), gate per ad set)."""
    row = session.execute(
        select(BudgetChange.evidence, BudgetChange.created_at)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .where(AdSet.campaign_id == campaign_id, BudgetChange.reason.not_in(NOT_REALLOCATION))
        .order_by(BudgetChange.created_at.desc(), BudgetChange.id.desc())
        .limit(1)
    ).first()
    if row is None or not isinstance(row[0], dict):
        return {}, None
    variants = row[0].get("variants")
    return (variants if isinstance(variants, dict) else {}), row[1]


def _budgets_at(
    session: Session, ad_sets: list[tuple[int, str, int]], ends: list[datetime], since: datetime
) -> list[tuple[int, ...]]:
    """Each ad set's budget at each of ``ends`` (ascending), rebuilt backwards from today's
    through the changes that reached the platform, as ``promoter.data`` rebuilds them (a
    change counts from the hour it was made in); only the columns it needs are read."""
    ids = [a[0] for a in ad_sets]
    changes = session.execute(
        select(BudgetChange.ad_set_id, BudgetChange.old_budget_minor, BudgetChange.created_at)
        .where(
            BudgetChange.ad_set_id.in_(ids),
            BudgetChange.mode.in_(("applied", "rolled_back")),
            BudgetChange.created_at >= since,
        )
        .order_by(BudgetChange.created_at.desc(), BudgetChange.id.desc())
    ).all()
    budgets = {a[0]: a[2] for a in ad_sets}
    out: list[tuple[int, ...]] = []
    pointer = 0
    for end in reversed(ends):
        while pointer < len(changes) and floor_hour(changes[pointer][2]) > end:
            ad_set_id, old, _ = changes[pointer]
            budgets[ad_set_id] = old or 0
            pointer += 1
        out.append(tuple(budgets[i] for i in ids))
    out.reverse()
    return out


def share_series(
    session: Session,
    ad_sets: list[tuple[int, str, int]],
    days: list[date],
    timezone: str,
    now: datetime,
) -> ShareSeries:
    """``ad_sets``: (id, label, current budget). Budgets at each day's end rebuilt backwards
    from today's through the applied changes (``promoter.data``'s reconstruction)."""
    if not ad_sets or not days:
        return ShareSeries(tuple(days), ())
    zone = ZoneInfo(timezone)
    last = floor_hour(now)
    ends = [
        min(last, datetime.combine(d + timedelta(days=1), time(), zone) - timedelta(hours=1))
        for d in days
    ]
    since = datetime.combine(days[0], time(), zone)
    vectors = _budgets_at(session, ad_sets, ends, since)
    shares: list[list[float]] = [[] for _ in ad_sets]
    for vector in vectors:
        total = sum(vector)
        for i, budget in enumerate(vector):
            shares[i].append(budget / total if total > 0 else 0.0)
    return ShareSeries(
        tuple(days), tuple((a[1], tuple(s)) for a, s in zip(ad_sets, shares, strict=True))
    )


def change_row(change: dict[str, Any], labels: dict[str, str], money: Money) -> ChangeRow:
    """A ``recommendations.change_out`` dict for the page: the ad set named by its ad, the
    evidence in words."""
    own = change.get("ad_set_evidence") or {}
    evidence = change.get("evidence") or {}
    why: list[str] = []
    is_promotion = str(change["reason"]).startswith("promoter:")
    if isinstance(own, dict) and isinstance(own.get("p_best"), int | float):
        why.append(f"{own['p_best']:.0%} likely to be the best")
        if own.get("gated"):
            why.append("below the evidence gate")
    decision = evidence.get("decision") if isinstance(evidence, dict) else None
    if isinstance(decision, dict) and isinstance(decision.get("interval"), list):
        low, high = decision["interval"]
        why.append(lift_words(float(decision["lift"]), float(low), float(high)))
    if change["reason"] == "budget:rollback" or change["reason"] == "promoter:rollback":
        why.append("a rollback")
    expires = change.get("expires_at")
    return ChangeRow(
        id=int(change["change_id"]),
        at=datetime.fromisoformat(change["created_at"]),
        label=labels.get(change["ad_set_id"], change["ad_set_name"] or change["ad_set_id"]),
        old_minor=change["old_budget_minor"],
        new_minor=int(change["new_budget_minor"]),
        delta_minor=int(change["delta_minor"]),
        mode=str(change["mode"]),
        reason=str(change["reason"]),
        who=actor_words(str(change.get("decided_by") or change["actor"])),
        why="; ".join(why),
        expires_at=datetime.fromisoformat(expires) if expires else None,
        can_approve=bool(change.get("can_approve")),
        can_rollback=bool(change.get("can_rollback")),
        is_promotion=is_promotion,
    )


def build_campaign_detail(
    session: Session, account_id: int, external_id: str, now: datetime, money: Money
) -> CampaignDetail:
    """One campaign as of ``now``; ``NotFoundError`` for a campaign not in the account."""
    account = session.get(Account, account_id)
    campaign = campaign_by_external(session, account_id, external_id)
    if account is None or campaign is None:
        raise NotFoundError(f"no campaign {external_id!r}")
    zone = ZoneInfo(account.timezone)
    until = floor_hour(now) + timedelta(hours=1)
    today = now.astimezone(zone).date()
    days = [today - timedelta(days=DETAIL_DAYS - 1 - i) for i in range(DETAIL_DAYS)]
    since = datetime.combine(days[0], time(), zone)
    totals = campaign_variant_totals(session, campaign.id, since, until)
    ad_set_rows = session.execute(
        select(AdSet.id, AdSet.external_id, AdSet.status, AdSet.daily_budget_minor)
        .where(AdSet.campaign_id == campaign.id)
        .order_by(AdSet.id)
    ).all()
    labels_by_id = ad_set_labels(session, (a[0] for a in ad_set_rows))
    labels = {ext: labels_by_id[i] for i, ext, _, _ in ad_set_rows}
    active_total = sum(b or 0 for _, _, s, b in ad_set_rows if s == "ACTIVE")
    names = dict(
        session.execute(
            select(Variant.id, Variant.name).where(Variant.campaign_id == campaign.id)
        ).all()
    )
    evidence, evidence_at = _latest_evidence(session, campaign.id)
    ads = []
    for t in totals:
        own = evidence.get(t.ad_set_external_id)
        own = own if isinstance(own, dict) else {}
        low = high = ctr = None
        if t.impressions > 0:
            ctr = t.clicks / t.impressions
            low, high = ctr_interval(min(t.clicks, t.impressions), t.impressions)
        active_set = t.ad_set_status == "ACTIVE"
        ads.append(
            AdRow(
                external_id=t.ad_id,
                name=names.get(t.variant_id) or t.ad_id,
                ad_set_external_id=t.ad_set_external_id,
                ad_set_label=labels.get(t.ad_set_external_id, t.ad_set_external_id),
                status=t.status if active_set else "PAUSED",
                is_control=t.is_control,
                budget_minor=t.budget_minor,
                budget_share=(
                    (t.budget_minor or 0) / active_total
                    if active_total and active_set and t.budget_minor is not None
                    else None
                ),
                impressions=t.impressions,
                clicks=t.clicks,
                spend_minor=t.spend_minor,
                conversions=t.conversions,
                ctr=ctr,
                ctr_low=low,
                ctr_high=high,
                p_best=float(own["p_best"]) if isinstance(own.get("p_best"), int | float) else None,
                gated=bool(own["gated"]) if "gated" in own else None,
            )
        )
    ads.sort(key=lambda a: (a.status != "ACTIVE", -(a.p_best or 0.0), -a.impressions))
    budgeted = [(i, labels_by_id[i], b or 0) for i, _, _, b in ad_set_rows if b is not None]
    shares = share_series(session, budgeted, days, account.timezone, now)
    log = budget_change_log(
        session, account_id, now=now, campaign_external_id=external_id, limit=LOG_LIMIT
    )
    pending = pending_recommendations(
        session, account_id, now=now, campaign_external_id=external_id
    )
    structure = campaign_structures(session, account_id).get(campaign.external_id)
    words = STRUCTURE_WORDS.get(structure.value) if structure is not None else None
    return CampaignDetail(
        account_id=account_id,
        currency=account.currency,
        external_id=campaign.external_id,
        name=campaign.name or campaign.external_id,
        status=campaign.status,
        objective=campaign.objective,
        structure=words[0] if words else None,
        structure_detail=words[1] if words else None,
        since=since,
        ads=tuple(ads),
        evidence_at=evidence_at,
        shares=shares,
        pending=tuple(change_row(c, labels, money) for c in pending),
        log=tuple(change_row(c, labels, money) for c in log),
        last=last_outcomes(session, account_id).get(campaign.external_id),
    )
