"""What a person does with the promoter's actions: read the history, approve a change that waits
for a human, undo one in a single call; and what the allocator must respect (promotion floors).

Rollback sets the ad set's budget back to the action's ``old_budget_minor`` through the platform,
as its own audited change (``promoter:rollback``), and marks the action, and any later promoter
action on the same ad set that it thereby undoes, ``rolled_back``. It is not stopped by the kill
switch (it is a person reducing risk); approving is (it raises a budget). Both are idempotent:
calling again returns the same result.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import floor_hour
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.promoter.service import (
    FUND,
    PROMOTE,
    PROMOTER_REASONS,
    RAMP,
    ROLLBACK,
    NoPlatformError,
    PlatformRefusedError,
    PromotionRefusedError,
    UnknownPromotionError,
    action_out,
    ceiling_problem,
    load_settings,
    lock_account,
    reconcile,
    write_platform,
)
from adflywheel.store.engine import transaction
from adflywheel.store.models import AdSet, BudgetChange


def _action(session: Session, account_id: int, action_id: int) -> tuple[BudgetChange, AdSet]:
    record = session.get(BudgetChange, action_id)
    if record is None or record.account_id != account_id or record.reason not in (PROMOTE, RAMP):
        raise UnknownPromotionError(f"no promoter action {action_id} in this account")
    ad_set = session.get(AdSet, record.ad_set_id)
    assert ad_set is not None
    return record, ad_set


def _out(factory: sessionmaker[Session], record_id: int, **extra: Any) -> dict[str, Any]:
    with factory() as session:
        record = session.get(BudgetChange, record_id)
        assert record is not None
        ad_set = session.get(AdSet, record.ad_set_id)
        assert ad_set is not None
        return {**action_out(record, ad_set.external_id), **extra}


def _write(
    factory: sessionmaker[Session], platform: AdPlatform, record_id: int, external: str
) -> None:
    try:
        write_platform(factory, platform, record_id, external)
    except PlatformError as error:
        raise PlatformRefusedError(
            f"the platform refused ({error}); the change stays pending and is retried"
        ) from error


def approve(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    action_id: int,
    *,
    now: datetime,
    actor: str,
) -> dict[str, Any]:
    """Apply a change that waits for approval, if the guardrails still allow it now."""
    with factory() as session:  # whose action it is comes first: another's is unknown (404)
        _action(session, account_id, action_id)
        settings = load_settings(session, account_id)
    if platform is None:
        raise NoPlatformError("no ad platform is configured for this account")
    g = settings.guardrails
    reconcile(factory, platform, account_id, floor_hour(now), g, now)
    with transaction(factory) as session:
        lock_account(session, account_id)
        record, ad_set = _action(session, account_id, action_id)
        if record.mode == "applied" and record.evidence.get("approved_by"):
            return _out(factory, record.id, already=True)
        if record.mode != "pending_approval":
            raise PromotionRefusedError(
                f"action {action_id} is {record.mode}, not awaiting approval"
            )
        if g.kill_switch:
            raise PromotionRefusedError("the account's kill switch is on: no budget is raised")
        current = ad_set.daily_budget_minor or 0
        if current >= record.new_budget_minor:
            raise PromotionRefusedError(
                f"the budget is already {current}, not below {record.new_budget_minor}"
            )
        problem = ceiling_problem(session, account_id, g, current, record.new_budget_minor)
        if problem is not None:
            raise PromotionRefusedError(f"approving would break the {problem.value} guardrail")
        record.evidence = {
            **record.evidence,
            "proposed_from_minor": record.old_budget_minor,
            "approved_by": actor,
            "approved_at": now.isoformat(),
            "decided_hour": floor_hour(now).isoformat(),
        }
        funding = _funding_of(session, account_id, record.id)
        record.old_budget_minor = current
        record.mode = "pending"
        record_id, external = record.id, ad_set.external_id
    for fund_id, fund_external in funding:  # the decreases first: never above the plan
        _write(factory, platform, fund_id, fund_external)
    _write(factory, platform, record_id, external)
    return _out(factory, record_id, already=False)


def _funding_of(session: Session, account_id: int, action_id: int) -> list[tuple[int, str]]:
    """The decreases recorded to fund a promotion awaiting approval, made pending with it; a
    funder whose budget moved since makes the approval refused (decide again next hour)."""
    out: list[tuple[int, str]] = []
    records = session.scalars(
        select(BudgetChange).where(
            BudgetChange.account_id == account_id,
            BudgetChange.reason == FUND,
            BudgetChange.mode == "pending_approval",
        )
    ).all()
    for fund in records:
        if fund.evidence.get("funds_action") != action_id:
            continue
        ad_set = session.get(AdSet, fund.ad_set_id)
        assert ad_set is not None
        if (ad_set.daily_budget_minor or 0) != fund.old_budget_minor:
            raise PromotionRefusedError(
                f"the campaign changed since the decision ({ad_set.external_id} moved): "
                "the promoter decides again next hour"
            )
        fund.mode = "pending"
        out.append((fund.id, ad_set.external_id))
    return out


def rollback(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    action_id: int,
    *,
    now: datetime,
    actor: str,
) -> dict[str, Any]:
    """Restore the budget the action replaced; returns the rollback's own record."""
    with factory() as session:  # whose action it is comes first: another's is unknown (404)
        _action(session, account_id, action_id)
        settings = load_settings(session, account_id)
    if platform is None:
        raise NoPlatformError("no ad platform is configured for this account")
    hour = floor_hour(now)
    reconcile(factory, platform, account_id, hour, settings.guardrails, now)
    key = f"promoter-rollback:{action_id}"
    with transaction(factory) as session:
        lock_account(session, account_id)
        record, ad_set = _action(session, account_id, action_id)
        existing = session.scalar(select(BudgetChange).where(BudgetChange.idempotency_key == key))
        if existing is not None:
            if existing.mode == "applied":
                return _out(factory, existing.id, already=True)
            raise PromotionRefusedError(f"an earlier rollback of {action_id} is {existing.mode}")
        if record.mode != "applied":
            raise PromotionRefusedError(
                f"action {action_id} is {record.mode}: nothing was applied to roll back"
            )
        restore = record.old_budget_minor or 0
        current = ad_set.daily_budget_minor or 0
        problem = ceiling_problem(session, account_id, settings.guardrails, current, restore)
        if problem is not None:
            raise PromotionRefusedError(f"restoring would break the {problem.value} guardrail")
        later = session.scalars(
            select(BudgetChange.id).where(
                BudgetChange.ad_set_id == record.ad_set_id,
                BudgetChange.reason.in_((PROMOTE, RAMP)),
                BudgetChange.mode == "applied",
                BudgetChange.id > record.id,
            )
        ).all()
        undo = BudgetChange(
            account_id=account_id,
            ad_set_id=ad_set.id,
            old_budget_minor=current,
            new_budget_minor=restore,
            reason=ROLLBACK,
            evidence={
                "rollback_of": record.id,
                "also_undoes": list(later),
                "variant_id": record.evidence.get("variant_id"),
                "decided_hour": hour.isoformat(),
                "requested_by": actor,
            },
            mode="pending",
            actor=actor,
            cycle_hour=hour,
            idempotency_key=key,
            created_at=now,
        )
        session.add(undo)
        session.flush()
        undo_id, external = undo.id, ad_set.external_id
    _write(factory, platform, undo_id, external)
    return _out(factory, undo_id, already=False)


def dismiss(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    action_id: int,
    *,
    now: datetime,
    actor: str,
) -> dict[str, Any]:
    """Turn down a promotion awaiting approval: nothing is written, the action and the decreases
    recorded to fund it become ``dismissed`` with who and when (in the evidence; it counts for
    the cooldown like an expired one, so the promoter does not ask again at once). Idempotent;
    an action that is not awaiting approval is refused. ``platform`` is unused (the signature
    is ``approve``'s and ``rollback``'s)."""
    del platform
    with factory() as session:  # whose action it is comes first: another's is unknown (404)
        _action(session, account_id, action_id)
        settings = load_settings(session, account_id)
    reconcile(factory, None, account_id, floor_hour(now), settings.guardrails, now)
    with transaction(factory) as session:
        lock_account(session, account_id)
        record, _ = _action(session, account_id, action_id)
        if record.mode == "dismissed":
            return _out(factory, record.id, already=True)
        if record.mode != "pending_approval":
            raise PromotionRefusedError(
                f"action {action_id} is {record.mode}, not awaiting approval"
            )
        stamp = {"dismissed_by": actor, "dismissed_at": now.isoformat()}
        record.evidence = {**record.evidence, **stamp}
        record.mode = "dismissed"
        for fund in session.scalars(
            select(BudgetChange).where(
                BudgetChange.account_id == account_id,
                BudgetChange.reason == FUND,
                BudgetChange.mode == "pending_approval",
            )
        ):
            if fund.evidence.get("funds_action") == action_id:
                fund.evidence = {**fund.evidence, **stamp}
                fund.mode = "dismissed"
    return _out(factory, action_id, already=False)


def awaiting_approval(session: Session, account_id: int, *, now: datetime) -> list[dict[str, Any]]:
    """The promotions a person can still approve or dismiss (awaiting approval within the
    account's ``approval_ttl_hours``), newest first, with ``expires_at``."""
    ttl = timedelta(hours=load_settings(session, account_id).guardrails.approval_ttl_hours)
    rows = session.execute(
        select(BudgetChange, AdSet.external_id)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .where(
            BudgetChange.account_id == account_id,
            BudgetChange.reason.in_((PROMOTE, RAMP)),
            BudgetChange.mode == "pending_approval",
            BudgetChange.created_at >= now - ttl,
        )
        .order_by(BudgetChange.created_at.desc(), BudgetChange.id.desc())
    ).all()
    return [
        {**action_out(r, external), "expires_at": (r.created_at + ttl).isoformat()}
        for r, external in rows
    ]


def history(
    session: Session, account_id: int, *, limit: int = 100, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The promoter's audit log, newest first."""
    query = (
        select(BudgetChange, AdSet.external_id)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .where(
            BudgetChange.account_id == account_id,
            BudgetChange.reason.in_(PROMOTER_REASONS),
        )
        .order_by(BudgetChange.created_at.desc(), BudgetChange.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(BudgetChange.created_at >= since)
    return [action_out(record, external) for record, external in session.execute(query)]


def promotion_floors(session: Session, account_id: int, now: datetime) -> dict[str, int]:
    """Budgets the allocator must not cut below: each ad set's latest applied promotion within
    the account's cooldown (by ad-set external id). The composition rule for the cycle: the
    allocator splits the campaign's total, but a promoted ad set keeps at least its promoted
    budget until its cooldown ends or it is rolled back; the others share the rest."""
    settings = load_settings(session, account_id)
    since = now - timedelta(hours=settings.guardrails.cooldown_hours)
    rows = session.execute(
        select(AdSet.external_id, BudgetChange.new_budget_minor)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .where(
            BudgetChange.account_id == account_id,
            BudgetChange.reason.in_((PROMOTE, RAMP)),
            BudgetChange.mode == "applied",
            BudgetChange.created_at >= since,
        )
        .order_by(BudgetChange.created_at, BudgetChange.id)
    ).all()
    return {external: int(new) for external, new in rows}
