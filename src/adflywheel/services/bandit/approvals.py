"""A person approves one recommended budget change, or rolls back an applied one (issue #18).

Both write through the platform the crash-safe way the promoter does (``promoter.service``):
under the account's lock the guardrails are checked again and the record is made ``pending``,
then the platform call, then ``applied``. Both are idempotent: calling again answers the first
result (``already``). Whose change it is comes first: another account's is unknown (404).

Approve applies exactly the one change: only during the UTC hour it was recommended in (later
it is marked expired and refused, 409), not under the kill switch, a freeze window, for an
excluded or held-out campaign, only while the ad set's budget is still the one it was decided
on, inside the ad set's edit bounds now and the ceilings; and an increase waits for the
decreases of the same decision that fund it unless the account lets campaigns grow
(``loops/bandit/approval.py``). A refused platform write puts it back to ``recommended``.

Rollback restores the budget an applied reallocation change replaced, as its own audited change
(reason ``budget:rollback``, keyed ``budget-rollback:<id>``), and marks the original
``rolled_back``. It is a person undoing: the edit rules do not hold it back, the ceilings do,
and the kill switch and freeze windows stop only a rollback that raises a budget. Only the
ad set's latest change can be rolled back (its budget must still be that change's new one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import floor_hour
from adflywheel.core.errors import UpstreamError
from adflywheel.loops.bandit.approval import approval_problem
from adflywheel.platforms.base import AdPlatform, PlatformError
from adflywheel.services.bandit.edits import account_bounds
from adflywheel.services.bandit.recommendations import (
    EXPIRED,
    NOT_REALLOCATION,
    RECOMMENDED,
    ROLLBACK,
    ChangeRefusedError,
    change_out,
    load_change,
    refuse_if_expired,
)
from adflywheel.services.promoter.funding import left_alone
from adflywheel.services.promoter.service import (
    PROMOTER_REASONS,
    ceiling_problem,
    lock_account,
    write_platform,
)
from adflywheel.services.promoter.settings import load_settings
from adflywheel.store.engine import transaction
from adflywheel.store.models import AdSet, BudgetChange

NO_PLATFORM = "no ad platform is connected for this account: nothing can be written"


class NoPlatformError(ChangeRefusedError):
    """The account has no connected ad platform to write to (409)."""


class PlatformRefusedError(UpstreamError):
    """The ad platform refused the write (502)."""


def _out(
    factory: sessionmaker[Session], account_id: int, record_id: int, now: datetime, already: bool
) -> dict[str, Any]:
    with factory() as session:
        record, ad_set, campaign = load_change(session, account_id, record_id)
        return {**change_out(record, ad_set, campaign, now), "already": already}


def _approved(record: BudgetChange) -> bool:
    return bool(record.evidence.get("approved_by"))


def approve_change(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    change_id: int,
    *,
    now: datetime,
    actor: str,
) -> dict[str, Any]:
    """Apply one recommended change through the platform (see the module notes); returns the
    change as ``change_out`` with ``already`` true when it had been approved before."""
    with factory() as session:  # whose change it is comes first: another's is unknown (404)
        record, _, campaign = load_change(session, account_id, change_id)
        settings = load_settings(session, account_id)
    if record.mode == "applied" and _approved(record):
        return _out(factory, account_id, change_id, now, already=True)
    if record.reason in NOT_REALLOCATION or record.mode not in (RECOMMENDED, EXPIRED, "pending"):
        hint = (
            " (a promoter action: POST /api/ml/auto-promote/{id}/approve)"
            if record.reason in PROMOTER_REASONS
            else ""
        )
        raise ChangeRefusedError(
            f"budget change {change_id} is {record.mode} ({record.reason}): only a "
            f"recommendation of the reallocation can be approved{hint}"
        )
    if record.mode == "pending" and not _approved(record):
        raise ChangeRefusedError(f"budget change {change_id} is being written by the cycle")
    refuse_if_expired(factory, account_id, record, now)
    if platform is None:
        raise NoPlatformError(
            "no ad platform is connected for this account: nothing can be written"
        )
    g = settings.guardrails
    if g.kill_switch:
        raise ChangeRefusedError("the account's kill switch is on: no budget is written")
    alone = left_alone(g, account_id, campaign.external_id, now)
    if alone is not None:
        raise ChangeRefusedError(f"campaign {campaign.external_id} is {alone[1]}: not written")
    with transaction(factory) as session:
        lock_account(session, account_id)
        record, ad_set, campaign = load_change(session, account_id, change_id)
        if record.mode == "applied" and _approved(record):
            return _out(factory, account_id, change_id, now, already=True)
        interrupted = record.mode == "pending"  # an approval a crash cut short
        if record.mode == RECOMMENDED:
            _check(session, platform, account_id, record, ad_set, now)
            record.evidence = {
                **record.evidence,
                "recommended_by": record.actor,
                "approved_by": actor,
                "approved_at": now.isoformat(),
            }
            record.actor = actor[:100]
            record.mode = "pending"
        external = ad_set.external_id
    if interrupted and _finish_interrupted(factory, platform, change_id, external, now):
        return _out(factory, account_id, change_id, now, already=True)
    try:  # a write the platform refused goes back to recommended: it may be tried again
        write_platform(factory, platform, change_id, external)
    except PlatformError as error:
        with transaction(factory) as session:
            record = _record(session, change_id)
            if record.mode == "pending":
                evidence = dict(record.evidence)
                record.actor = str(evidence.pop("recommended_by", record.actor))[:100]
                for k in ("approved_by", "approved_at"):
                    evidence.pop(k, None)
                record.evidence = {**evidence, "last_platform_error": str(error)}
                record.mode = RECOMMENDED
        raise PlatformRefusedError(f"the platform refused ({error}); nothing changed") from error
    return _out(factory, account_id, change_id, now, already=False)


def _finish_interrupted(
    factory: sessionmaker[Session],
    platform: AdPlatform,
    change_id: int,
    external: str,
    now: datetime,
) -> bool:
    """An approval left ``pending`` by a crash: applied when the platform already has its
    budget (True); sent again within the hour it was approved in (False); abandoned after it,
    so stale money is never moved (refused)."""
    with factory() as session:
        record = _record(session, change_id)
        new, approved_at = record.new_budget_minor, str(record.evidence.get("approved_at"))
    live = {a.external_id: a.daily_budget_minor for a in platform.list_ad_sets()}
    if live.get(external) == new:
        write_platform(factory, None, change_id, external)
        return True
    if floor_hour(datetime.fromisoformat(approved_at)) == floor_hour(now):
        return False
    with transaction(factory) as session:
        _record(session, change_id).mode = "abandoned"
    raise ChangeRefusedError(
        f"budget change {change_id} was approved in an earlier hour but never written: "
        "abandoned, the next cycle recommends again"
    )


def _record(session: Session, record_id: int) -> BudgetChange:
    record = session.get(BudgetChange, record_id)
    assert record is not None
    return record


def _check(
    session: Session,
    platform: AdPlatform,
    account_id: int,
    record: BudgetChange,
    ad_set: AdSet,
    now: datetime,
) -> None:
    """Under the account lock: the edit rules, the campaign's plan and the ceilings, now."""
    g = load_settings(session, account_id).guardrails
    bounds = account_bounds(session, platform, account_id, g, now, dry_run=False)
    rows = session.execute(
        select(BudgetChange.old_budget_minor, BudgetChange.new_budget_minor)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .where(
            BudgetChange.account_id == account_id,
            AdSet.campaign_id == ad_set.campaign_id,
            BudgetChange.created_at == record.created_at,
            BudgetChange.reason == record.reason,
            BudgetChange.id != record.id,
            BudgetChange.mode.in_(("applied", "pending")),
        )
    ).all()
    current = ad_set.daily_budget_minor or 0
    problem = approval_problem(
        recorded_old=record.old_budget_minor,
        current=current,
        new=record.new_budget_minor,
        bounds=bounds.get(ad_set.external_id),
        applied_sibling_deltas=[new - (old or 0) for old, new in rows],
        campaign_growth=g.campaign_growth,
    )
    if problem is not None:
        raise ChangeRefusedError(f"budget change {record.id} cannot be approved: {problem}")
    ceiling = ceiling_problem(session, account_id, g, current, record.new_budget_minor)
    if ceiling is not None:
        raise ChangeRefusedError(
            f"budget change {record.id} would break the {ceiling.value} guardrail"
        )


def rollback_key(change_id: int) -> str:
    """The idempotency key of a change's rollback: a change is rolled back at most once."""
    return f"budget-rollback:{change_id}"


def rollback_change(
    factory: sessionmaker[Session],
    platform: AdPlatform | None,
    account_id: int,
    change_id: int,
    *,
    now: datetime,
    actor: str,
) -> dict[str, Any]:
    """Restore the budget an applied reallocation change replaced (see the module notes);
    returns the rollback's own record (``change_out``, ``evidence.rollback_of`` naming the
    original), with ``already`` true when an earlier call had rolled it back."""
    key = rollback_key(change_id)
    with factory() as session:  # whose change it is comes first: another's is unknown (404)
        record, _, campaign = load_change(session, account_id, change_id)
        done = session.scalar(select(BudgetChange).where(BudgetChange.idempotency_key == key))
        settings = load_settings(session, account_id)
    if done is not None and done.mode == "applied":
        _mark_rolled_back(factory, change_id)
        return _out(factory, account_id, done.id, now, already=True)
    if record.reason in PROMOTER_REASONS:
        raise ChangeRefusedError(
            f"budget change {change_id} is a promoter action: roll it back with "
            f"POST /api/ml/auto-promote/{change_id}/rollback"
        )
    if record.reason in NOT_REALLOCATION:
        raise ChangeRefusedError(
            f"budget change {change_id} ({record.reason}) is not the service's reallocation"
        )
    if done is None and record.mode != "applied":
        raise ChangeRefusedError(
            f"budget change {change_id} is {record.mode}: nothing was applied to roll back"
        )
    if platform is None:
        raise NoPlatformError(
            "no ad platform is connected for this account: nothing can be written"
        )
    g = settings.guardrails
    with transaction(factory) as session:
        lock_account(session, account_id)
        record, ad_set, campaign = load_change(session, account_id, change_id)
        undo = session.scalar(select(BudgetChange).where(BudgetChange.idempotency_key == key))
        if undo is None:
            current = ad_set.daily_budget_minor or 0
            restore = record.old_budget_minor
            if restore is None:
                raise ChangeRefusedError(f"ad set {ad_set.external_id} had no daily budget before")
            if current != record.new_budget_minor:
                raise ChangeRefusedError(
                    f"ad set {ad_set.external_id}'s budget changed since (it is {current}, the "
                    f"change set {record.new_budget_minor}): roll back its latest change first"
                )
            if restore > current and (g.kill_switch or g.frozen(now, campaign.external_id)):
                why = "the kill switch is on" if g.kill_switch else "a freeze window is on"
                raise ChangeRefusedError(f"{why}: a rollback that raises a budget is not written")
            problem = ceiling_problem(session, account_id, g, current, restore)
            if problem is not None:
                raise ChangeRefusedError(f"restoring would break the {problem.value} guardrail")
            undo = BudgetChange(
                account_id=account_id,
                ad_set_id=ad_set.id,
                old_budget_minor=current,
                new_budget_minor=restore,
                reason=ROLLBACK,
                evidence={
                    "rollback_of": change_id,
                    "requested_by": actor,
                    "decided_hour": floor_hour(now).isoformat(),
                },
                mode="pending",
                actor=actor[:100],
                cycle_hour=floor_hour(now),
                idempotency_key=key,
                created_at=now,
            )
            session.add(undo)
            session.flush()
        undo_id, external = undo.id, ad_set.external_id
    try:  # a refused write stays pending: calling again sends it again
        write_platform(factory, platform, undo_id, external)
    except PlatformError as error:
        raise PlatformRefusedError(
            f"the platform refused ({error}); the rollback stays pending: call again to retry"
        ) from error
    _mark_rolled_back(factory, change_id)
    return _out(factory, account_id, undo_id, now, already=False)


def _mark_rolled_back(factory: sessionmaker[Session], change_id: int) -> None:
    with transaction(factory) as session:
        record = _record(session, change_id)
        if record.mode == "applied":
            record.mode = "rolled_back"
