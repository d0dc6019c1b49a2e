"""The promotions page's view: the promoter's actions (``services.promoter.actions.history``)
as candidates waiting for a person, winners promoted, and the history, each with its lift and
interval in words a marketer reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.console.views.activity import actor_words, lift_words
from adflywheel.core.errors import NotFoundError
from adflywheel.services.promoter.actions import history
from adflywheel.services.promoter.service import FUND, ROLLBACK
from adflywheel.services.promoter.settings import load_settings
from adflywheel.store.models import Account, Campaign, Variant

HISTORY_LIMIT = 200
# Waiting for a person: approvable while the guardrails' approval time lasts.
WAITING = ("pending_approval",)
STATUS_WORDS = {
    "applied": "Promoted",
    "pending": "Being written",
    "pending_approval": "Waiting for approval",
    "recommended": "Recommended",
    "dry_run": "Dry run (nothing written)",
    "expired": "Expired unapproved",
    "dismissed": "Dismissed",
    "rolled_back": "Rolled back",
    "abandoned": "Abandoned",
}


@dataclass(frozen=True, slots=True)
class PromotionRow:
    id: int
    at: datetime
    ad_external_id: str
    ad_name: str
    campaign_external_id: str | None
    campaign_name: str | None
    kind: str  # promote | ramp | rollback
    old_minor: int | None
    new_minor: int
    mode: str
    status: str  # ``mode`` in words
    who: str
    lift: float | None
    lift_low: float | None
    lift_high: float | None
    lift_words: str | None
    confidence: float | None
    impressions: int | None
    control_impressions: int | None
    expires_at: datetime | None
    can_approve: bool
    can_dismiss: bool
    can_rollback: bool


@dataclass(frozen=True, slots=True)
class Promotions:
    account_id: int
    currency: str
    mode: str  # the account's: recommend | autopilot
    candidates: tuple[PromotionRow, ...]
    winners: tuple[PromotionRow, ...]  # applied, newest first
    history: tuple[PromotionRow, ...]

    @property
    def empty(self) -> bool:
        return not self.history


def _row(
    action: dict[str, Any],
    ads: dict[str, tuple[str, int]],
    campaigns: dict[int, tuple[str, str]],
    now: datetime,
    ttl: timedelta,
) -> PromotionRow:
    evidence = action.get("evidence") or {}
    decision = evidence.get("decision") if isinstance(evidence, dict) else None
    decision = decision if isinstance(decision, dict) else {}
    ad = str(action.get("variant") or evidence.get("funds_variant") or action["ad_set_id"])
    name, campaign_id = ads.get(ad, (ad, -1))
    campaign = campaigns.get(campaign_id)
    interval = decision.get("interval")
    lift = decision.get("lift")
    low, high = interval if isinstance(interval, list) and len(interval) == 2 else (None, None)
    words = (
        lift_words(float(lift), float(low), float(high))
        if isinstance(lift, int | float) and low is not None and high is not None
        else None
    )
    at = datetime.fromisoformat(action["created_at"])
    mode = str(action["mode"])
    expires = at + ttl if mode in WAITING else None
    live = mode in WAITING and expires is not None and now < expires
    reason = str(action["reason"])
    kind = (
        "rollback"
        if reason == ROLLBACK
        else ("ramp" if reason.endswith("ramp_step") else "promote")
    )
    who = evidence.get("approved_by") or evidence.get("dismissed_by") or action["actor"]
    return PromotionRow(
        id=int(action["action_id"]),
        at=at,
        ad_external_id=ad,
        ad_name=name,
        campaign_external_id=campaign[0] if campaign else decision.get("campaign_id"),
        campaign_name=campaign[1] if campaign else None,
        kind=kind,
        old_minor=action.get("old_budget_minor"),
        new_minor=int(action["new_budget_minor"]),
        mode="expired" if mode in WAITING and not live else mode,
        status=STATUS_WORDS.get("expired" if mode in WAITING and not live else mode, mode),
        who=actor_words(str(who)),
        lift=float(lift) if isinstance(lift, int | float) else None,
        lift_low=float(low) if low is not None else None,
        lift_high=float(high) if high is not None else None,
        lift_words=words,
        confidence=decision.get("confidence"),
        impressions=decision.get("impressions"),
        control_impressions=decision.get("control_impressions"),
        expires_at=expires,
        can_approve=live and mode == "pending_approval",
        can_dismiss=live,
        can_rollback=mode == "applied" and kind != "rollback",
    )


def build_promotions(session: Session, account_id: int, now: datetime) -> Promotions:
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}")
    settings = load_settings(session, account_id)
    ttl = timedelta(hours=settings.guardrails.approval_ttl_hours)
    actions = [a for a in history(session, account_id, limit=HISTORY_LIMIT) if a["reason"] != FUND]
    wanted = {str(a.get("variant") or a["ad_set_id"]) for a in actions}
    ads = {
        external: (name or external, campaign_id)
        for external, name, campaign_id in session.execute(
            select(Variant.external_id, Variant.name, Variant.campaign_id).where(
                Variant.account_id == account_id, Variant.external_id.in_(sorted(wanted))
            )
        )
    }
    campaigns = {
        cid: (external, name or external)
        for cid, external, name in session.execute(
            select(Campaign.id, Campaign.external_id, Campaign.name).where(
                Campaign.account_id == account_id
            )
        )
    }
    rows = [_row(a, ads, campaigns, now, ttl) for a in actions]
    return Promotions(
        account_id=account_id,
        currency=account.currency,
        mode=settings.guardrails.mode.value,
        candidates=tuple(r for r in rows if r.can_approve or r.can_dismiss),
        winners=tuple(r for r in rows if r.mode == "applied" and r.kind != "rollback"),
        history=tuple(rows),
    )
