"""The reallocation's budget-change log and its recommendations: what the console, the API and
the CLI read, and a person's dismissal (issue #18). Approving and rolling back are in
``approvals``.

In recommend mode the hourly reallocation records each change it would make as a
``recommended`` row of ``budget_changes`` and writes nothing. A recommendation is valid during
the UTC hour it was made in (its ``created_at``): the split it belongs to was decided on that
hour's budgets and evidence, so stale money is never moved. After that hour it is ``expired``
(marked so by the next cycle or by an attempt to act on it, and read as expired before). A
person may approve it (``approvals.approve_change``) or dismiss it (``dismiss_change``); the
row's ``actor`` then names that person and ``evidence.recommended_by`` the policy that made it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from adflywheel.core.clock import floor_hour
from adflywheel.core.errors import ConflictError, NotFoundError
from adflywheel.services.promoter.service import PROMOTER_REASONS
from adflywheel.store.engine import transaction
from adflywheel.store.models import AdSet, BudgetChange, Campaign

RECOMMENDED, EXPIRED, DISMISSED = "recommended", "expired", "dismissed"
# What a recommendation can become without being applied (the edit rules of a recommend-mode
# account count these as edits, as they counted its dry runs: see ``edits.edit_histories``).
RECOMMENDATION_MODES = (RECOMMENDED, EXPIRED, DISMISSED)
ROLLBACK = "budget:rollback"  # a person's undo of an applied reallocation change
EXTERNAL_EDIT = "external_edit"
# Records that are not the reallocation's (their own endpoints act on the promoter's).
NOT_REALLOCATION = (*PROMOTER_REASONS, EXTERNAL_EDIT, ROLLBACK)
VALID_FOR = timedelta(hours=1)


class UnknownChangeError(NotFoundError):
    """No such budget change in this account (another account's is unknown too: 404)."""


class ChangeRefusedError(ConflictError):
    """The change's state or the guardrails forbid the request now (409)."""


class RecommendationExpiredError(ChangeRefusedError):
    """The recommendation's hour is over: it was marked expired and nothing was written."""


def made_hour(record: BudgetChange) -> datetime:
    """The UTC hour a record was made in: a recommendation is valid during it only."""
    return floor_hour(record.created_at)


def is_live(record: BudgetChange, now: datetime) -> bool:
    """A recommendation that can still be approved or dismissed now."""
    return record.mode == RECOMMENDED and made_hour(record) == floor_hour(now)


def effective_mode(record: BudgetChange, now: datetime) -> str:
    """The stored mode, except that a recommendation of an earlier hour reads ``expired``."""
    if record.mode == RECOMMENDED and made_hour(record) < floor_hour(now):
        return EXPIRED
    return record.mode


def change_out(
    record: BudgetChange, ad_set: AdSet, campaign: Campaign, now: datetime
) -> dict[str, Any]:
    """One budget change as every reader shows it: where (campaign and ad set, ids and names),
    from what to what, why (reason and the decision's evidence, with this ad set's own part in
    ``ad_set_evidence``), who, and its state now (``mode``; ``expires_at`` for a
    recommendation). Times are UTC ISO 8601, money minor units a day."""
    evidence = record.evidence or {}
    variants = evidence.get("variants")
    own = variants.get(ad_set.external_id) if isinstance(variants, dict) else None
    mode = effective_mode(record, now)
    old = record.old_budget_minor
    return {
        "change_id": record.id,
        "created_at": record.created_at.isoformat(),
        "cycle_hour": record.cycle_hour.isoformat() if record.cycle_hour else None,
        "campaign_id": campaign.external_id,
        "campaign_name": campaign.name,
        "ad_set_id": ad_set.external_id,
        "ad_set_name": ad_set.name,
        "old_budget_minor": old,
        "new_budget_minor": record.new_budget_minor,
        "delta_minor": record.new_budget_minor - (old or 0),
        "reason": record.reason,
        "mode": mode,
        "actor": record.actor,
        "recommended_by": evidence.get("recommended_by"),
        "decided_by": evidence.get("approved_by") or evidence.get("dismissed_by"),
        "decided_at": evidence.get("approved_at") or evidence.get("dismissed_at"),
        "expires_at": (
            (made_hour(record) + VALID_FOR).isoformat()
            if record.mode in (RECOMMENDED, EXPIRED)
            else None
        ),
        "can_approve": mode == RECOMMENDED,
        "can_rollback": mode == "applied" and record.reason not in NOT_REALLOCATION,
        "ad_set_evidence": own if isinstance(own, dict) else None,
        "evidence": evidence,
    }


def _mode_filter(mode: str, now: datetime) -> ColumnElement[bool]:
    hour = floor_hour(now)
    if mode == RECOMMENDED:
        return and_(BudgetChange.mode == RECOMMENDED, BudgetChange.created_at >= hour)
    if mode == EXPIRED:
        stale = and_(BudgetChange.mode == RECOMMENDED, BudgetChange.created_at < hour)
        return or_(BudgetChange.mode == EXPIRED, stale)
    return BudgetChange.mode == mode


def budget_change_log(
    session: Session,
    account_id: int,
    *,
    now: datetime,
    mode: str | None = None,
    reason: str | None = None,
    campaign_external_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The account's budget changes, newest first, each as ``change_out``: everything the
    service changed, recommended, proposed or saw changed by hand, with the evidence. Filters:
    ``mode`` (as read now: ``recommended`` means still approvable, ``expired`` includes
    recommendations whose hour is over), ``reason`` (``thompson``, ``promoter:promote``, …),
    one campaign (its platform id), ``since`` (UTC)."""
    query = (
        select(BudgetChange, AdSet, Campaign)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .join(Campaign, Campaign.id == AdSet.campaign_id)
        .where(BudgetChange.account_id == account_id)
        .order_by(BudgetChange.created_at.desc(), BudgetChange.id.desc())
        .limit(limit)
    )
    if mode is not None:
        query = query.where(_mode_filter(mode, now))
    if reason is not None:
        query = query.where(BudgetChange.reason == reason)
    if campaign_external_id is not None:
        query = query.where(Campaign.external_id == campaign_external_id)
    if since is not None:
        query = query.where(BudgetChange.created_at >= since)
    return [change_out(r, a, c, now) for r, a, c in session.execute(query)]


def pending_recommendations(
    session: Session,
    account_id: int,
    *,
    now: datetime,
    campaign_external_id: str | None = None,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """The recommendations a person can still approve or dismiss (this UTC hour's), newest
    first, with their evidence: what the console lists under "pending"."""
    return budget_change_log(
        session,
        account_id,
        now=now,
        mode=RECOMMENDED,
        campaign_external_id=campaign_external_id,
        limit=limit,
    )


def change_by_id(
    session: Session, account_id: int, change_id: int, now: datetime
) -> dict[str, Any]:
    """One of the account's budget changes (``change_out``); another account's is unknown."""
    record, ad_set, campaign = load_change(session, account_id, change_id)
    return change_out(record, ad_set, campaign, now)


def load_change(
    session: Session, account_id: int, change_id: int
) -> tuple[BudgetChange, AdSet, Campaign]:
    """The record with its ad set and campaign; ``UnknownChangeError`` when it is not this
    account's (whose it is comes before anything else)."""
    row = session.execute(
        select(BudgetChange, AdSet, Campaign)
        .join(AdSet, AdSet.id == BudgetChange.ad_set_id)
        .join(Campaign, Campaign.id == AdSet.campaign_id)
        .where(BudgetChange.id == change_id, BudgetChange.account_id == account_id)
    ).first()
    if row is None:
        raise UnknownChangeError(f"no budget change {change_id} in this account")
    return row[0], row[1], row[2]


def expire_recommendations(session: Session, account_id: int, now: datetime) -> int:
    """Mark the recommendations of hours before ``now``'s expired; returns how many."""
    result = session.execute(
        update(BudgetChange)
        .where(
            BudgetChange.account_id == account_id,
            BudgetChange.mode == RECOMMENDED,
            BudgetChange.created_at < floor_hour(now),
        )
        .values(mode=EXPIRED)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def refuse_if_expired(
    factory: sessionmaker[Session], account_id: int, record: BudgetChange, now: datetime
) -> None:
    """A recommendation whose hour is over is marked expired (committed) and refused."""
    if record.mode not in (RECOMMENDED, EXPIRED) or is_live(record, now):
        return
    with transaction(factory) as session:
        expire_recommendations(session, account_id, now)
    raise RecommendationExpiredError(
        f"budget change {record.id} expired: it was recommended for the hour starting "
        f"{made_hour(record).isoformat()} and could be acted on only until "
        f"{(made_hour(record) + VALID_FOR).isoformat()} (UTC); nothing was written, and the "
        "next cycle recommends again from fresh data"
    )


def dismiss_change(
    factory: sessionmaker[Session], account_id: int, change_id: int, *, now: datetime, actor: str
) -> dict[str, Any]:
    """Dismiss a live recommendation: nothing is written, the row says who dismissed it and
    when. Dismissing it again answers the first dismissal (``already``); an expired, applied or
    non-recommendation row is refused (409)."""
    with transaction(factory) as session:
        record, ad_set, campaign = load_change(session, account_id, change_id)
        if record.mode == DISMISSED:
            return {**change_out(record, ad_set, campaign, now), "already": True}
    refuse_if_expired(factory, account_id, record, now)
    with transaction(factory) as session:
        record, ad_set, campaign = load_change(session, account_id, change_id)
        if record.mode != RECOMMENDED:
            raise ChangeRefusedError(
                f"budget change {change_id} is {record.mode}: only a recommendation can be "
                "dismissed"
            )
        record.evidence = {
            **record.evidence,
            "recommended_by": record.actor,
            "dismissed_by": actor,
            "dismissed_at": now.isoformat(),
        }
        record.actor = actor[:100]
        record.mode = DISMISSED
        session.flush()
        return {**change_out(record, ad_set, campaign, now), "already": False}
