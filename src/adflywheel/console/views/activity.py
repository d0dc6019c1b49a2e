"""What the flywheel did, in plain sentences, from the audit records (overview and campaign pages).

Reads the records the loops already write (``budget_changes``, ``ad_status_changes``,
``retrain_triggers``, ``cycle_runs``); it decides nothing. One hour's reallocation of a campaign
is one sentence ("Moved $40 from *A* to *B*: 93% likely to be the best, 2,400 impressions of
evidence"), its ad sets named by their ad when they hold one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adflywheel.store.models import (
    AdSet,
    AdStatusChange,
    BudgetChange,
    Campaign,
    CycleRun,
    HourlyActualRow,
    Variant,
)
from adflywheel.store.monitoring import RetrainTrigger

Money = Callable[[int], str]

# How far back "impressions of evidence" reach: the bandit's evidence window (28 days).
EVIDENCE_DAYS = 28
PROMOTER_PREFIX = "promoter:"
# Records of a decision that came to nothing are not news.
_QUIET_MODES = ("abandoned", "pending")


@dataclass(frozen=True, slots=True)
class ActivityItem:
    """One sentence of the log. ``kind``: budget, promotion, pause, retrain, failure."""

    at: datetime
    kind: str
    sentence: str
    campaign_external_id: str | None = None
    proposed: bool = False  # recorded for a person, not written


def lift_words(lift: float, low: float, high: float, what: str = "clicks per impression") -> str:
    """ "+31% more clicks per impression than the control, between +18% and +45%"."""
    amount = f"{lift:+.0%} more" if lift >= 0 else f"{-lift:.0%} fewer"
    return f"{amount} {what} than the control, between {low:+.0%} and {high:+.0%}"


def names(labels: Sequence[str]) -> str:
    """ "A", "A and B", "A, B and 2 others"."""
    if len(labels) <= 2:
        return " and ".join(labels)
    if len(labels) == 3:
        return f"{labels[0]}, {labels[1]} and {labels[2]}"
    return f"{labels[0]}, {labels[1]} and {len(labels) - 2} others"


def actor_words(actor: str) -> str:
    """Who did it, for a person: the flywheel, a signed-in user, an API key."""
    if actor.startswith("user:"):
        return actor.removeprefix("user:")
    if actor.startswith(("api:", "api/")):
        return f"the API ({actor[4:]})"
    return "the flywheel"


def ad_set_labels(session: Session, ad_set_ids: Iterable[int]) -> dict[int, str]:
    """Each ad set named as a marketer knows it: by its ad when it holds one, else its name."""
    ids = sorted(set(ad_set_ids))
    if not ids:
        return {}
    ads: dict[int, list[str]] = {}
    for ad_set_id, name, external in session.execute(
        select(Variant.ad_set_id, Variant.name, Variant.external_id)
        .where(Variant.ad_set_id.in_(ids))
        .order_by(Variant.id)
    ):
        ads.setdefault(ad_set_id, []).append(name or external)
    out: dict[int, str] = {}
    for ad_set_id, name, external in session.execute(
        select(AdSet.id, AdSet.name, AdSet.external_id).where(AdSet.id.in_(ids))
    ):
        found = ads.get(ad_set_id, [])
        out[ad_set_id] = found[0] if len(found) == 1 else (name or external)
    return out


def evidence_impressions(
    session: Session, ad_set_ids: Iterable[int], until: datetime
) -> dict[int, int]:
    """Impressions of each ad set's ads over the evidence window before ``until``: the ads'
    ids first, then one GROUP BY over their hours (the hourly rows' primary key)."""
    ids = sorted(set(ad_set_ids))
    if not ids:
        return {}
    ad_set_of: dict[int, int] = {
        int(v): int(a)
        for v, a in session.execute(
            select(Variant.id, Variant.ad_set_id).where(Variant.ad_set_id.in_(ids))
        )
    }
    if not ad_set_of:
        return {}
    rows = session.execute(
        select(HourlyActualRow.variant_id, func.sum(HourlyActualRow.impressions))
        .where(
            HourlyActualRow.variant_id.in_(sorted(ad_set_of)),
            HourlyActualRow.hour_start >= until - timedelta(days=EVIDENCE_DAYS),
            HourlyActualRow.hour_start < until,
        )
        .group_by(HourlyActualRow.variant_id)
    )
    out: dict[int, int] = {}
    for variant_id, impressions in rows:
        ad_set = ad_set_of[variant_id]
        out[ad_set] = out.get(ad_set, 0) + int(impressions or 0)
    return out


@dataclass(slots=True)
class _Change:
    """A budget change's columns without its evidence (a JSON document per row: read only for
    the sentences shown, see ``budget_activity``). Named as ``BudgetChange``'s."""

    id: int
    ad_set_id: int
    old_budget_minor: int | None
    new_budget_minor: int
    reason: str
    mode: str
    actor: str
    cycle_hour: datetime | None
    created_at: datetime
    campaign: str
    ad_set: str  # the ad set's platform id: how the bandit's evidence names it
    evidence: dict[str, Any] = field(default_factory=dict)


def _budget_rows(
    session: Session, account_id: int, since: datetime, until: datetime, campaign_id: int | None
) -> list[_Change]:
    query = (
        select(
            BudgetChange.id,
            BudgetChange.ad_set_id,
            BudgetChange.old_budget_minor,
            BudgetChange.new_budget_minor,
            BudgetChange.reason,
            BudgetChange.mode,
            BudgetChange.actor,
            BudgetChange.cycle_hour,
            BudgetChange.created_at,
            Campaign.external_id,
            AdSet.external_id,
        )
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .join(Campaign, Campaign.id == AdSet.campaign_id)
        .where(
            BudgetChange.account_id == account_id,
            BudgetChange.created_at >= since,
            BudgetChange.created_at < until,
            BudgetChange.mode.not_in(_QUIET_MODES),
        )
        .order_by(BudgetChange.created_at.desc(), BudgetChange.id.desc())
        .limit(5000)
    )
    if campaign_id is not None:
        query = query.where(AdSet.campaign_id == campaign_id)
    return [_Change(*row) for row in session.execute(query)]


def _proposed(mode: str) -> bool:
    return mode in ("recommended", "dry_run", "pending_approval", "expired", "dismissed")


_REALLOCATION_VERBS = {
    "applied": ("Moved", "Raised", "Lowered"),
    "rolled_back": (
        "Moved (later rolled back)",
        "Raised (later rolled back)",
        "Lowered (later rolled back)",
    ),
    "recommended": ("Recommends moving", "Recommends raising", "Recommends lowering"),
    "dry_run": (
        "Would have moved (dry run)",
        "Would have raised (dry run)",
        "Would have lowered (dry run)",
    ),
    "expired": (
        "Recommended moving (expired)",
        "Recommended raising (expired)",
        "Recommended lowering (expired)",
    ),
    "dismissed": (
        "Recommended moving (dismissed)",
        "Recommended raising (dismissed)",
        "Recommended lowering (dismissed)",
    ),
}


def _delta(row: _Change) -> int:
    return row.new_budget_minor - (row.old_budget_minor or 0)


def _sides(group: Sequence[_Change]) -> tuple[list[_Change], list[_Change]]:
    """The increases (largest first) and the decreases (largest first) of one decision."""
    ups = sorted((r for r in group if _delta(r) > 0), key=lambda r: (-_delta(r), r.id))
    downs = sorted((r for r in group if _delta(r) < 0), key=lambda r: (_delta(r), r.id))
    return ups, downs


def reallocation_sentence(
    group: Sequence[_Change], labels: dict[int, str], seen: dict[int, int], money: Money
) -> str:
    """One campaign-hour of budget changes: what moved from which ads to which, and why."""
    ups, downs = _sides(group)
    raised = sum(_delta(r) for r in ups)
    lowered = -sum(_delta(r) for r in downs)
    move, rise, fall = _REALLOCATION_VERBS.get(group[0].mode, _REALLOCATION_VERBS["applied"])
    lead = cited(group)
    first = [lead] if lead in ups else []  # the ad set the evidence speaks for, named first
    up_names = names([labels[r.ad_set_id] for r in first + [r for r in ups if r is not lead]])
    down_names = names([labels[r.ad_set_id] for r in downs])
    if ups and downs:
        text = f"{move} {money(min(raised, lowered))} from {down_names} to {up_names}"
    elif ups:
        text = f"{rise} {up_names} by {money(raised)}"
    else:
        text = f"{fall} {down_names} by {money(lowered)}"
    why: list[str] = []
    p_best = p_best_of(group[0].evidence, lead.ad_set)
    if p_best is not None:
        many = len(ups) > 1 and lead in ups
        who = f"{labels[lead.ad_set_id]} is " if many else ""
        why.append(f"{who}{p_best:.0%} likely to be the best")
    shown = seen.get(lead.ad_set_id)
    if shown:
        why.append(f"{shown:,} impressions of evidence")
    return f"{text}: {', '.join(why)}" if why else text


def p_best_of(evidence: Any, ad_set_external_id: str) -> float | None:
    """P(best) of an ad set in a reallocation's evidence (``variants`` keyed by ad set id)."""
    variants = evidence.get("variants") if isinstance(evidence, dict) else None
    found = variants.get(ad_set_external_id) if isinstance(variants, dict) else None
    value = found.get("p_best") if isinstance(found, dict) else None
    return float(value) if isinstance(value, int | float) else None


def promotion_sentence(record: _Change | BudgetChange, label: str, money: Money) -> str:
    """A promoter action in words, with its lift and interval when it carries a decision."""
    decision = record.evidence.get("decision") if isinstance(record.evidence, dict) else None
    old, new = money(record.old_budget_minor or 0), money(record.new_budget_minor)
    lift = ""
    if isinstance(decision, dict) and isinstance(decision.get("interval"), list):
        low, high = decision["interval"]
        lift = f" ({lift_words(float(decision['lift']), float(low), float(high))})"
    mode = record.mode
    if record.reason == f"{PROMOTER_PREFIX}rollback":
        who = actor_words(str(record.evidence.get("requested_by") or record.actor))
        return f"{who[0].upper()}{who[1:]} rolled back a promotion of {label}: budget {old} → {new}"
    if mode in ("applied", "rolled_back"):
        tail = " (later rolled back)" if mode == "rolled_back" else ""
        return f"Promoted {label}: budget {old} → {new}{lift}{tail}"
    if mode == "pending_approval":
        return (
            f"Found a winner, {label}: raise its budget {old} → {new}?{lift} Waiting for approval"
        )
    if mode == "expired":
        return f"A promotion of {label} expired unapproved ({old} → {new}){lift}"
    if mode == "dismissed":
        return f"A promotion of {label} was dismissed ({old} → {new}){lift}"
    return f"Would promote {label}: budget {old} → {new}{lift}"


def cited(group: Sequence[_Change]) -> _Change:
    """The ad set a reallocation's sentence speaks for: of those that gained, the one most
    likely to be the best (the decision's evidence, shared by its records, names every ad
    set's P(best)), else the largest gain; the largest cut when nothing gained."""
    ups, downs = _sides(group)
    if not ups:
        return downs[0] if downs else group[0]
    evidence = group[0].evidence
    return max(ups, key=lambda r: (p_best_of(evidence, r.ad_set) or -1.0, _delta(r)))


def budget_activity(
    session: Session,
    account_id: int,
    since: datetime,
    until: datetime,
    money: Money,
    *,
    campaign_id: int | None = None,
    limit: int = 30,
) -> tuple[list[ActivityItem], int]:
    """The budget changes and promotions of ``[since, until)`` in words, newest first: at most
    ``limit`` sentences, and how many there were. Only the shown sentences' evidence is read."""
    rows = _budget_rows(session, account_id, since, until, campaign_id)
    groups: dict[tuple[Any, ...], list[_Change]] = {}
    for r in rows:
        if r.reason.startswith(PROMOTER_PREFIX):
            if r.reason == f"{PROMOTER_PREFIX}fund":
                continue  # said with the promotion it funds
            groups[("promotion", r.id)] = [r]
        else:
            hour = r.cycle_hour or r.created_at
            groups.setdefault(("budget", r.campaign, hour, r.actor, r.mode), []).append(r)
    shown = list(groups.items())[:limit]
    # One evidence document per decision: its records share the proposal's evidence.
    evidence: dict[int, Any] = dict(
        session.execute(
            select(BudgetChange.id, BudgetChange.evidence).where(
                BudgetChange.id.in_([group[0].id for _, group in shown])
            )
        ).all()
    )
    for _, group in shown:
        found = evidence.get(group[0].id)
        group[0].evidence = found if isinstance(found, dict) else {}
    labels = ad_set_labels(session, (r.ad_set_id for _, group in shown for r in group))
    seen = evidence_impressions(
        session, (cited(group).ad_set_id for k, group in shown if k[0] == "budget"), until
    )
    items: list[ActivityItem] = []
    for key, group in shown:
        first = group[0]
        if key[0] == "promotion":
            sentence = promotion_sentence(first, labels[first.ad_set_id], money)
        else:
            sentence = reallocation_sentence(group, labels, seen, money)
        items.append(
            ActivityItem(first.created_at, key[0], sentence, first.campaign, _proposed(first.mode))
        )
    return items, len(groups)


def pause_activity(
    session: Session, account_id: int, since: datetime, until: datetime
) -> list[ActivityItem]:
    """Clear losers paused (or proposed to be) inside shared budgets, and their undoing."""
    rows = session.execute(
        select(AdStatusChange, Variant.name, Variant.external_id, Campaign.external_id)
        .join(Variant, Variant.id == AdStatusChange.variant_id)
        .join(Campaign, Campaign.id == Variant.campaign_id)
        .where(
            AdStatusChange.account_id == account_id,
            AdStatusChange.created_at >= since,
            AdStatusChange.created_at < until,
            AdStatusChange.mode.not_in(_QUIET_MODES),
        )
        .order_by(AdStatusChange.created_at.desc(), AdStatusChange.id.desc())
        .limit(200)
    ).all()
    out: list[ActivityItem] = []
    for record, name, external, campaign in rows:
        label = name or external
        e = record.evidence if isinstance(record.evidence, dict) else {}
        if record.new_status == "ACTIVE":
            who = actor_words(record.actor)
            sentence = f"{who[0].upper()}{who[1:]} re-activated {label}"
        else:
            verb = "Paused" if record.mode == "applied" else "Recommends pausing"
            sentence = f"{verb} {label}"
            ratio, impressions = e.get("ratio"), e.get("impressions")
            if isinstance(ratio, int | float) and ratio < 1:
                sentence += f": {1 - ratio:.0%} fewer clicks per impression than the best ad"
                if isinstance(impressions, int):
                    sentence += f", {impressions:,} impressions of evidence"
        out.append(
            ActivityItem(record.created_at, "pause", sentence, campaign, record.mode != "applied")
        )
    return out


_RETRAIN_WORDS = {
    "retrained": "Retrained the click-rate model",
    "not_retrained": "Tried a retrain and kept the current model",
    "failed": "A retrain of the click-rate model failed",
    "running": "Retraining the click-rate model",
    "blocked_breaker": "A retrain was wanted but held: the data-health breaker is open",
    "blocked_cooldown": "A retrain was wanted but held: a recent retrain is cooling down",
    "blocked_no_retrainer": "A retrain was wanted but no retrainer is set up",
}


def retrain_activity(
    session: Session, account_id: int, since: datetime, until: datetime
) -> list[ActivityItem]:
    rows = session.scalars(
        select(RetrainTrigger)
        .where(
            RetrainTrigger.account_id == account_id,
            RetrainTrigger.created_at >= since,
            RetrainTrigger.created_at < until,
        )
        .order_by(RetrainTrigger.created_at.desc())
        .limit(50)
    ).all()
    return [
        ActivityItem(
            r.created_at,
            "retrain",
            f"{_RETRAIN_WORDS.get(r.status, 'A retrain: ' + r.status)} (why: {r.reason})",
        )
        for r in rows
    ]


def failure_activity(
    session: Session, account_id: int, since: datetime, until: datetime
) -> list[ActivityItem]:
    """Hours whose cycle failed or ran partly, with the failing loops' errors."""
    rows = session.execute(
        select(
            CycleRun.hour_start,
            CycleRun.status,
            CycleRun.finished_at,
            CycleRun.started_at,
            CycleRun.report,
        )
        .where(
            CycleRun.account_id == account_id,
            CycleRun.hour_start >= since,
            CycleRun.hour_start < until,
            CycleRun.status.in_(("failed", "partial")),
        )
        .order_by(CycleRun.hour_start.desc())
        .limit(50)
    ).all()
    out: list[ActivityItem] = []
    for hour, status, finished, started, report in rows:
        errors = report.get("errors") if isinstance(report, dict) else None
        detail = "; ".join(f"{k}: {v}" for k, v in sorted((errors or {}).items()))[:300]
        what = "failed" if status == "failed" else "ran in part (a loop failed)"
        sentence = f"The hourly cycle {what}" + (f": {detail}" if detail else "")
        out.append(ActivityItem(finished or started or hour, "failure", sentence))
    return out


def recent_activity(
    session: Session,
    account_id: int,
    since: datetime,
    until: datetime,
    money: Money,
    *,
    limit: int = 30,
) -> tuple[list[ActivityItem], int]:
    """Everything of ``[since, until)`` in words, newest first: at most ``limit`` items and how
    many there were in all."""
    budget, budget_total = budget_activity(session, account_id, since, until, money, limit=limit)
    others = [
        *pause_activity(session, account_id, since, until),
        *retrain_activity(session, account_id, since, until),
        *failure_activity(session, account_id, since, until),
    ]
    items = sorted([*budget, *others], key=lambda i: i.at, reverse=True)
    return items[:limit], budget_total + len(others)
