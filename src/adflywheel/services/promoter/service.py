"""Loop 7's service: find winners in the store, raise their budgets through the guardrails,
record every action with its evidence, and undo or approve one in a single call.

Every change goes the crash-safe way: under a lock on the account row, the ceilings are checked
again and an audit record is written as ``pending`` with an idempotency key
``promoter:<account>:<cycle hour>:<ad set>``; then the platform call; then ``applied``. A crash in
between leaves ``pending``, which the next run reconciles against the platform (already there →
``applied``; same hour → written again, an absolute budget is idempotent; older → ``abandoned``),
so a promotion is never applied twice. Modes: ``applied``, ``dry_run``, ``pending_approval``
(then ``applied`` on approval, or ``expired``), ``rolled_back``, ``abandoned``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import floor_hour
from adflywheel.core.domain import AccountMode, BudgetStructure
from adflywheel.core.errors import (
    AdflywheelError,
    ConflictError,
    NotFoundError,
    UpstreamError,
)
from adflywheel.loops.promoter import (
    Candidate,
    Decision,
    Guardrails,
    HeldBack,
    Hold,
    Mode,
    PastAction,
    PlannedAction,
    decide,
    plan_promotions,
)
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.promoter.data import CampaignData, campaigns_data
from adflywheel.services.promoter.funding import (
    CAMPAIGN,
    GROWTH,
    Limits,
    candidate,
    funders,
    left_alone,
    read_limits,
)
from adflywheel.services.promoter.pooling import pooled_by_ad_set
from adflywheel.services.promoter.report import PromotionReport, decision_out
from adflywheel.services.promoter.settings import PromoterSettings, load_settings, store_settings
from adflywheel.store.engine import transaction
from adflywheel.store.models import Account, AdSet, BudgetChange, Campaign
from adflywheel.store.queries import campaign_structures

PROMOTE, RAMP, ROLLBACK = "promoter:promote", "promoter:ramp_step", "promoter:rollback"
FUND = "promoter:fund"  # a decrease that funds a promotion inside its campaign
PROMOTER_REASONS = (PROMOTE, RAMP, ROLLBACK, FUND)

__all__ = [
    "PROMOTER_REASONS",
    "NoPlatformError",
    "PlatformRefusedError",
    "PromoterSettings",
    "PromotionError",
    "PromotionRefusedError",
    "PromotionReport",
    "UnknownPromotionError",
    "decision_out",
    "load_settings",
    "run_promotion",
    "store_settings",
]


class PromotionError(AdflywheelError, RuntimeError):
    """A request the promoter refuses; the subclass says why."""


class UnknownPromotionError(PromotionError, NotFoundError):
    """No such campaign, account or promoter action in this account."""


class PromotionRefusedError(PromotionError, ConflictError):
    """The action's state or the guardrails forbid the request now."""


class NoPlatformError(PromotionError, ConflictError):
    """The account has no ad platform to write the change to: a 409, as for a fetch or a
    reallocation without one (the service is not unavailable; the account is not connected)."""


class PlatformRefusedError(PromotionError, UpstreamError):
    """The ad platform refused the write; the change stays pending and is retried."""


def _campaigns(session: Session, account_id: int, external_id: str | None) -> list[Campaign]:
    query = select(Campaign).where(Campaign.account_id == account_id)
    if external_id is not None:
        found = session.scalar(query.where(Campaign.external_id == external_id))
        if found is None:
            raise UnknownPromotionError(f"no campaign {external_id!r} in this account")
        return [found]
    return list(session.scalars(query.where(Campaign.status == "ACTIVE").order_by(Campaign.id)))


def _history(session: Session, account_id: int, since: datetime) -> list[PastAction]:
    records = session.execute(
        select(BudgetChange, AdSet.external_id)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .where(
            BudgetChange.account_id == account_id,
            BudgetChange.reason.in_((PROMOTE, RAMP, ROLLBACK)),
            BudgetChange.created_at >= since,
        )
    ).all()
    return [
        PastAction(
            ad_set_id=external,
            at=r.created_at,
            cycle_hour=r.cycle_hour,
            old_budget_minor=r.old_budget_minor,
            new_budget_minor=r.new_budget_minor,
            target_minor=r.evidence.get("target_minor"),
            mode=r.mode,
            kind="rollback" if r.reason == ROLLBACK else "promote",
        )
        for r, external in records
    ]


def lock_account(session: Session, account_id: int) -> Account:
    """Serialise budget writes per account (``SELECT ... FOR UPDATE`` on PostgreSQL)."""
    account = session.scalar(select(Account).where(Account.id == account_id).with_for_update())
    if account is None:
        raise UnknownPromotionError(f"no account {account_id}")
    return account


def _account_total(session: Session, account_id: int) -> int:
    """The account's daily budgets, paused ones included (they can come back): its ad sets',
    and the campaign budgets (CBO) of campaigns none of whose ad sets has one (Meta spends
    those too, so the ceiling counts them)."""
    ad_sets = session.execute(
        select(AdSet.campaign_id, AdSet.daily_budget_minor).where(AdSet.account_id == account_id)
    ).all()
    with_ad_set_budgets = {c for c, b in ad_sets if b is not None}
    campaigns = session.execute(
        select(Campaign.id, Campaign.daily_budget_minor).where(Campaign.account_id == account_id)
    ).all()
    shared = sum(b or 0 for c, b in campaigns if c not in with_ad_set_budgets)
    return sum(b or 0 for _, b in ad_sets) + shared


def ceiling_problem(
    session: Session, account_id: int, g: Guardrails, current: int, new: int
) -> Hold | None:
    """Checked again under the account lock, just before writing."""
    if g.max_variant_budget_minor is not None and new > max(g.max_variant_budget_minor, current):
        return Hold.VARIANT_CEILING
    if (
        g.max_account_budget_minor is not None
        and new > current
        and _account_total(session, account_id) - current + new > g.max_account_budget_minor
    ):
        return Hold.ACCOUNT_CEILING
    return None


def write_platform(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    record_id: int,
    external_id: str,
) -> None:
    """The platform call (skipped when ``platform`` is None: the platform already has the
    budget), then the record marked applied and the stored budget updated."""
    with factory() as session:
        record = session.get(BudgetChange, record_id)
        assert record is not None
        new = record.new_budget_minor
    if platform is not None:
        platform.set_ad_set_budget(external_id, new)
    with transaction(factory) as session:
        record = session.get(BudgetChange, record_id)
        ad_set = session.get(AdSet, record.ad_set_id) if record is not None else None
        assert record is not None and ad_set is not None
        record.mode = "applied"
        ad_set.daily_budget_minor = new
        if record.reason == ROLLBACK:
            undone = [record.evidence.get("rollback_of"), *record.evidence.get("also_undoes", [])]
            for original in session.scalars(
                select(BudgetChange).where(BudgetChange.id.in_([i for i in undone if i]))
            ):
                original.mode = "rolled_back"


def reconcile(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    hour: datetime,
    guardrails: Guardrails,
    now: datetime,
) -> list[dict[str, Any]]:
    """Expire stale approvals; settle ``pending`` records left by a crash (see module notes)."""
    out: list[dict[str, Any]] = []
    with transaction(factory) as session:
        lock_account(session, account_id)
        records = session.scalars(
            select(BudgetChange).where(
                BudgetChange.account_id == account_id,
                BudgetChange.reason.in_(PROMOTER_REASONS),
                BudgetChange.mode.in_(("pending", "pending_approval")),
            )
        ).all()
        stale = now - timedelta(hours=guardrails.approval_ttl_hours)
        for r in records:
            if r.mode == "pending_approval" and r.created_at < stale:
                r.mode = "expired"
                out.append({"action_id": r.id, "mode": "expired"})
        pending = [(r.id, r.ad_set_id, r.new_budget_minor, r.evidence, r.reason) for r in records]
        pending = [p for p, r in zip(pending, records, strict=True) if r.mode == "pending"]
    if not pending or platform is None:
        return out
    live = {a.external_id: a.daily_budget_minor for a in platform.list_ad_sets()}
    for record_id, ad_set_id, new, evidence, reason in pending:
        with factory() as session:
            ad_set = session.get(AdSet, ad_set_id)
            assert ad_set is not None
            external, stored = ad_set.external_id, ad_set.daily_budget_minor or 0
            fits = ceiling_problem(session, account_id, guardrails, stored, new) is None
        allowed = reason == ROLLBACK or not guardrails.kill_switch
        retry = evidence.get("decided_hour") == hour.isoformat() and fits and allowed
        if live.get(external) == new or retry:
            try:
                write_platform(factory, None if live.get(external) == new else platform,
                               record_id, external)  # fmt: skip
            except PlatformError as error:
                out.append({"action_id": record_id, "mode": "pending", "error": str(error)})
                continue
            out.append({"action_id": record_id, "mode": "applied"})
        else:
            with transaction(factory) as session:
                record = session.get(BudgetChange, record_id)
                assert record is not None
                record.mode = "abandoned"
            out.append({"action_id": record_id, "mode": "abandoned"})
    return out


def _held(action: PlannedAction | HeldBack, reason: str, detail: str) -> dict[str, Any]:
    return {
        "variant": action.variant_id,
        "ad_set_id": action.ad_set_id,
        "reason": reason,
        "detail": detail,
    }


def action_out(record: BudgetChange, ad_set_external_id: str) -> dict[str, Any]:
    return {
        "action_id": record.id,
        "created_at": record.created_at.isoformat(),
        "cycle_hour": record.cycle_hour.isoformat() if record.cycle_hour else None,
        "variant": record.evidence.get("variant_id"),
        "ad_set_id": ad_set_external_id,
        "old_budget_minor": record.old_budget_minor,
        "new_budget_minor": record.new_budget_minor,
        "mode": record.mode,
        "reason": record.reason,
        "actor": record.actor,
        "evidence": record.evidence,
    }


def _carry_out(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    action: PlannedAction,
    decision: Decision,
    settings: PromoterSettings,
    hour: datetime,
    now: datetime,
    actor: str,
    paid_by: list[tuple[str, int, int]],
    basis: dict[str, str] | None = None,
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Record one planned change (and the decreases that fund it, ``paid_by``: ad set, old,
    new) and, when it is to be applied, write it to the platform: the decreases first, so the
    campaign never spends more than planned, even for a moment. ``basis``: which data the
    decision was judged on (final days only, for conversion objectives), kept in its evidence.
    Returns (promoted entry, held-back entry), exactly one of them set."""
    dry = action.mode is Mode.DRY_RUN
    key = f"promoter:{account_id}:{hour.isoformat()}:{action.ad_set_id}" + (":dry" if dry else "")
    if action.mode is Mode.APPLY and platform is None:
        return None, _held(action, "no_platform", "no ad platform is configured for this account")
    mode = _RECORD_MODES.get(action.mode, "pending")
    with transaction(factory) as session:
        lock_account(session, account_id)
        ad_set = _recheck(session, account_id, action, settings.guardrails, key)
        if isinstance(ad_set, dict):
            return None, ad_set
        funding = _fund_records(session, account_id, action, paid_by, hour, key, mode, actor, now)
        if isinstance(funding, dict):
            return None, funding
        record = _budget_change(
            account_id, ad_set.id, action, decision, settings,
            hour=hour, key=key, mode=mode, actor=actor, now=now,
        )  # fmt: skip
        if basis is not None:
            record.evidence = {**record.evidence, "data": basis}
        session.add(record)
        session.flush()
        record_id = record.id
        for fund in funding:
            fund.evidence = {**fund.evidence, "funds_action": record_id}
    if mode == "pending":
        assert platform is not None
        try:
            for fund_id, external in [(f.id, e) for f, e in zip(funding, paid_by, strict=True)]:
                write_platform(factory, platform, fund_id, external[0])
            write_platform(factory, platform, record_id, action.ad_set_id)
        except PlatformError as error:
            return None, _held(action, "platform_error", f"{error}; retried next run")
        mode = "applied"
    promoted = _promoted(record_id, action, decision, mode)
    promoted["funded_by"] = [{"ad_set_id": e, "old": o, "new": n} for e, o, n in paid_by]
    return promoted, None


def _fund_records(
    session: Session,
    account_id: int,
    action: PlannedAction,
    paid_by: list[tuple[str, int, int]],
    hour: datetime,
    key: str,
    mode: str,
    actor: str,
    now: datetime,
) -> list[BudgetChange] | dict[str, Any]:
    """The records of the decreases that fund a promotion, under the same lock and mode; the
    held-back entry when a funder's budget moved since the plan."""
    records: list[BudgetChange] = []
    for external, old, new in paid_by:
        ad_set = session.scalar(
            select(AdSet).where(AdSet.account_id == account_id, AdSet.external_id == external)
        )
        assert ad_set is not None
        if (ad_set.daily_budget_minor or 0) != old:
            return _held(action, "budget_moved", f"the funding ad set {external} moved")
        record = BudgetChange(
            account_id=account_id,
            ad_set_id=ad_set.id,
            old_budget_minor=old,
            new_budget_minor=new,
            reason=FUND,
            evidence={
                "funds_variant": action.variant_id,
                "funds_ad_set": action.ad_set_id,
                "decided_hour": hour.isoformat(),
            },
            mode=mode,
            actor=actor,
            cycle_hour=hour,
            idempotency_key=f"{key}:fund:{external}",
            created_at=now,
        )
        session.add(record)
        records.append(record)
    session.flush()
    return records


# The mode a planned change is recorded in; one to apply starts ``pending`` (see module notes).
_RECORD_MODES = {Mode.DRY_RUN: "dry_run", Mode.PENDING_APPROVAL: "pending_approval"}


def _recheck(
    session: Session, account_id: int, action: PlannedAction, g: Guardrails, key: str
) -> AdSet | dict[str, Any]:
    """Under the account lock: the ad set, unless the change exists already, its budget moved
    since the plan, or it no longer fits the ceilings (then the held-back entry)."""
    if session.scalar(select(BudgetChange.id).where(BudgetChange.idempotency_key == key)):
        return _held(action, Hold.ALREADY_ACTED.value, f"{key} exists")
    ad_set = session.scalar(
        select(AdSet).where(AdSet.account_id == account_id, AdSet.external_id == action.ad_set_id)
    )
    assert ad_set is not None
    current = ad_set.daily_budget_minor or 0
    if current != action.old_budget_minor:
        return _held(action, "budget_moved", f"the budget moved to {current}")
    problem = ceiling_problem(session, account_id, g, current, action.new_budget_minor)
    if problem is not None:
        return _held(action, problem.value, "re-checked when writing")
    return ad_set


def _budget_change(
    account_id: int,
    ad_set_id: int,
    action: PlannedAction,
    decision: Decision,
    settings: PromoterSettings,
    *,
    hour: datetime,
    key: str,
    mode: str,
    actor: str,
    now: datetime,
) -> BudgetChange:
    """The audit record of one change, with the decision and the guardrails behind it."""
    return BudgetChange(
        account_id=account_id,
        ad_set_id=ad_set_id,
        old_budget_minor=action.old_budget_minor,
        new_budget_minor=action.new_budget_minor,
        reason=PROMOTE if action.rule == "promote" else RAMP,
        evidence={
            "variant_id": decision.variant_id,
            "decision": decision_out(decision),
            "rule": action.rule,
            "guardrails": list(action.guardrails),
            "target_minor": action.target_minor,
            "decided_hour": hour.isoformat(),
            "funding": GROWTH if settings.guardrails.campaign_growth else CAMPAIGN,
            "settings": settings.to_dict(),
        },
        mode=mode,
        actor=actor,
        cycle_hour=hour,
        idempotency_key=key,
        created_at=now,
    )


def _promoted(
    record_id: int, action: PlannedAction, decision: Decision, mode: str
) -> dict[str, Any]:
    return {
        "action_id": record_id,
        "variant": action.variant_id,
        "unit": "ad_set" if action.variant_id == action.ad_set_id else "ad",
        "ad_set_id": action.ad_set_id,
        "campaign_id": decision.experiment,
        "old_budget_minor": action.old_budget_minor,
        "new_budget_minor": action.new_budget_minor,
        "target_minor": action.target_minor,
        "lift": decision.lift,
        "confidence": decision.confidence,
        "interval": list(decision.interval),
        "mode": mode,
        "rule": action.rule,
        "guardrails": list(action.guardrails),
    }


def run_promotion(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    *,
    now: datetime,
    campaign_external_id: str | None = None,
    actor: str = "promoter",
    dry_run: bool = False,
) -> PromotionReport:
    """Evaluate the account's active campaigns (or one) and promote the winners.

    The cycle hour is ``floor_hour(now)``: the cycle's step and an API call in the same hour share
    the idempotency keys, so the hour never promotes twice. ``dry_run`` forces dry-run for this
    call (the account's own setting may already ask for it). ``platform`` may be None when
    nothing is to be written (dry-run, approval, kill switch); a change that needs it is then
    held back as ``no_platform``.
    """
    hour = floor_hour(now)
    with factory() as session:
        settings = load_settings(session, account_id)
        campaigns = _campaigns(session, account_id, campaign_external_id)
    g = settings.guardrails
    # Recommend mode: every decision recorded and shown, nothing written.
    recommend = g.mode is AccountMode.RECOMMEND and not dry_run
    if (dry_run or recommend) and not g.dry_run:
        g = replace(g, dry_run=True)
    # a dry run writes nothing, not even the completion of an earlier crashed change
    reconciled = reconcile(factory, None if g.dry_run else platform, account_id, hour, g, now)
    data, history, total = _read_state(factory, account_id, campaigns, settings, g, hour, now)
    with factory() as session:
        limits = read_limits(session, platform, account_id, g, now)
        structures = campaign_structures(session, account_id)
    decisions = decide([d.experiment for d in data], settings.test)
    candidates, untouched = _candidates(decisions, data, g, limits, account_id, hour, structures)
    plan = plan_promotions(
        candidates,
        account_budget_minor=total,
        guardrails=g,
        history=history,
        now=now,
        cycle_hour=hour,
    )
    report = PromotionReport(
        hour, g.dry_run, g.kill_switch, [c.external_id for c in campaigns], decisions
    )
    report.recommend = recommend
    report.reconciled = reconciled
    report.held_back = untouched + [_held(h, h.reason.value, h.detail) for h in plan.held_back]
    by_variant = {d.variant_id: d for d in decisions}
    by_campaign = {d.experiment.key: d for d in data}
    run_settings = PromoterSettings(settings.test, g, settings.history_hours)
    for action in plan.actions:
        decision = by_variant[action.variant_id]
        paid_by = []
        if not g.campaign_growth:
            raise_minor = action.new_budget_minor - action.old_budget_minor
            campaign = by_campaign[decision.experiment]
            paid_by = funders(action.ad_set_id, raise_minor, campaign, limits)
        promoted, held = _carry_out(
            factory, platform, account_id, action, decision, run_settings, hour, now, actor,
            paid_by, by_campaign[decision.experiment].basis,
        )  # fmt: skip
        if promoted is not None:
            report.promoted.append(promoted)
        if held is not None:
            report.held_back.append(held)
    return report


def _read_state(
    factory: sessionmaker[Session],
    account_id: int,
    campaigns: list[Campaign],
    settings: PromoterSettings,
    g: Guardrails,
    hour: datetime,
    now: datetime,
) -> tuple[list[CampaignData], list[PastAction], int]:
    """The campaigns' experiment data over the settings' history, the promoter's records as far
    back as a cooldown, ramp or approval can reach, and the account's total daily budget."""
    since = hour - timedelta(hours=settings.history_hours)
    horizon = timedelta(hours=max(g.cooldown_hours, g.ramp_min_hours, g.approval_ttl_hours) + 1)
    with factory() as session:
        structures = campaign_structures(session, account_id)
        data: list[CampaignData] = []
        read = campaigns_data(session, account_id, campaigns, since=since, until=hour)
        for campaign in campaigns:
            found = read[campaign.id]
            if found is None:
                continue
            if structures.get(campaign.external_id) is BudgetStructure.AD_SET_BUDGETS_MULTI_AD:
                found = pooled_by_ad_set(found)  # the ad set, which has the budget, is the unit
            data.append(found)
        history = _history(session, account_id, now - horizon)
        total = _account_total(session, account_id)
    return data, history, total


def _candidates(
    decisions: list[Decision],
    data: list[CampaignData],
    g: Guardrails,
    limits: Limits,
    account_id: int,
    hour: datetime,
    structures: dict[str, BudgetStructure],
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """The winners whose variant is active, with their ad set, its budget and the cap on its
    raise; and the held-back entries of winners in campaigns left alone this hour or without ad
    set budgets to raise (a campaign budget, or a mix). Where ads share ad sets' budgets, the
    promoter has judged ad sets (``pooling``), so those winners are ad sets and go on."""
    info = {v.ad_id: v for d in data for v in d.variants.values()}
    campaigns = {d.experiment.key: d for d in data}
    out: list[Candidate] = []
    untouched: list[dict[str, Any]] = []
    for d in decisions:
        v = info[d.variant_id]
        if not (d.winner and v.active):
            continue
        alone = left_alone(g, account_id, v.campaign_external_id, hour)
        if alone is not None:
            untouched.append(
                {
                    "variant": d.variant_id,
                    "ad_set_id": v.ad_set_external_id,
                    "reason": Hold.LEFT_ALONE.value,
                    "detail": alone[1],
                }
            )
            continue
        structure = structures.get(v.campaign_external_id)
        promotable = (BudgetStructure.AD_SET_BUDGETS, BudgetStructure.AD_SET_BUDGETS_MULTI_AD)
        if structure is not None and structure not in promotable:
            untouched.append(
                {
                    "variant": d.variant_id,
                    "ad_set_id": v.ad_set_external_id,
                    "campaign_id": v.campaign_external_id,
                    "reason": Hold.SHARED_BUDGET.value,
                    "detail": f"the campaign's structure is {structure.value}: the ad set's "
                    "budget is not this ad's alone",
                }
            )
            continue
        out.append(candidate(d, v, campaigns[d.experiment], g, limits))
    return out, untouched
