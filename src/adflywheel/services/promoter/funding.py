"""How far a winner's budget may rise this hour, and who pays for it.

By default a promotion is funded inside its campaign: the raise is taken from the campaign's
other active ad sets in proportion to what each may give under the edit rules, so the campaign
spends what the advertiser planned. With ``campaign_growth`` the raise grows the campaign's
total instead, within the campaign ceiling and ``max_growth_per_week`` of what the campaign
spent a day a week ago (the promoter's own un-funded raises of the last 7 days count against
it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from adflywheel.cycle.outcomes import HoldCode
from adflywheel.loops.bandit import Bounds, in_holdout, share_out
from adflywheel.loops.promoter import Candidate, Decision, Guardrails, Hold
from adflywheel.platforms.base import AdPlatform
from adflywheel.services.bandit.edits import account_bounds
from adflywheel.services.promoter.data import CampaignData, VariantInfo
from adflywheel.store.models import BudgetChange

PROMOTE_REASONS = ("promoter:promote", "promoter:ramp_step")
CAMPAIGN, GROWTH = "campaign", "growth"


@dataclass(frozen=True, slots=True)
class Limits:
    """What bounds this hour's promotions: each ad set's edit bounds (by external id) and, per
    campaign (external id), how much its total grew through un-funded promotions this week."""

    bounds: dict[str, Bounds] = field(default_factory=dict)
    grown_this_week: dict[str, int] = field(default_factory=dict)


def read_limits(
    session: Session,
    platform: AdPlatform | None,
    account_id: int,
    g: Guardrails,
    now: datetime,
) -> Limits:
    bounds = account_bounds(session, platform, account_id, g, now, dry_run=g.dry_run)
    grown: dict[str, int] = {}
    if g.campaign_growth:
        rows = session.execute(
            select(
                BudgetChange.old_budget_minor, BudgetChange.new_budget_minor, BudgetChange.evidence
            ).where(
                BudgetChange.account_id == account_id,
                BudgetChange.reason.in_(PROMOTE_REASONS),
                BudgetChange.mode == "applied",
                BudgetChange.created_at > now - timedelta(days=7),
            )
        ).all()
        for old, new, evidence in rows:
            campaign = (evidence.get("decision") or {}).get("campaign_id")
            if evidence.get("funding") == GROWTH and campaign is not None:
                grown[campaign] = grown.get(campaign, 0) + new - (old or 0)
    return Limits(bounds, grown)


def left_alone(
    g: Guardrails, account_id: int, campaign: str, hour: datetime
) -> tuple[HoldCode, str] | None:
    """Why this campaign's budgets are not to be touched this hour, as the report's code and in
    words (None: they may be)."""
    if campaign in g.excluded_campaigns:
        return HoldCode.EXCLUDED, "excluded by the account"
    if g.frozen(hour, campaign):
        return HoldCode.FREEZE, "in a freeze window"
    if g.holdout_share > 0 and in_holdout(account_id, campaign, g.holdout_share):
        return HoldCode.HOLDOUT, "held out (the holdout keeps its split)"
    return None


def candidate(
    d: Decision, v: VariantInfo, campaign: CampaignData, g: Guardrails, lim: Limits
) -> Candidate:
    """A winner with the cap on its raise: its edit bounds, then what its campaign can fund (or,
    with growth, the campaign ceiling and the week's growth)."""
    current = v.budget_minor
    cap: int | None = None
    reason, detail = Hold.EDIT_RULES, ""
    own = lim.bounds.get(v.ad_set_external_id)
    if own is not None:
        cap, detail = own.high, own.why
        if own.why == "ceiling":
            reason = Hold.VARIANT_CEILING
    if current is not None:
        for limit, why, text in _campaign_caps(v, current, campaign, g, lim):
            if cap is None or limit < cap:
                cap, reason, detail = limit, why, text
    return Candidate(
        d.variant_id,
        v.ad_set_external_id,
        current,
        d.adjusted_p_value,
        d.lift,
        cap_minor=cap,
        cap_reason=reason,
        cap_detail=detail,
    )


def _campaign_caps(
    v: VariantInfo, current: int, campaign: CampaignData, g: Guardrails, lim: Limits
) -> list[tuple[int, Hold, str]]:
    budgets = campaign_budgets(campaign)
    if not g.campaign_growth:
        room = sum(_room(k, b, lim) for k, b in budgets.items() if k != v.ad_set_external_id)
        return [(current + room, Hold.NO_FUNDING, f"the campaign's other ad sets can give {room}")]
    total = sum(budgets.values())
    caps: list[tuple[int, Hold, str]] = []
    if g.max_campaign_budget_minor is not None:
        caps.append(
            (
                current + g.max_campaign_budget_minor - total,
                Hold.CAMPAIGN_CEILING,
                f"the campaign ceiling is {g.max_campaign_budget_minor}",
            )
        )
    grown = lim.grown_this_week.get(v.campaign_external_id, 0)
    allowed = math.floor((total - grown) * g.max_growth_per_week) - grown
    caps.append(
        (
            current + max(allowed, 0),
            Hold.GROWTH_LIMIT,
            f"a campaign grows at most {g.max_growth_per_week:.0%} a week ({grown} so far)",
        )
    )
    return caps


def campaign_budgets(campaign: CampaignData) -> dict[str, int]:
    """The daily budgets of the campaign's active ad sets, by external id."""
    return {
        v.ad_set_external_id: v.budget_minor
        for v in campaign.variants.values()
        if v.active and v.budget_minor is not None
    }


def _room(ad_set: str, budget: int, lim: Limits) -> int:
    bounds = lim.bounds.get(ad_set)
    return 0 if bounds is None else max(0, budget - bounds.low)


def funders(
    winner_ad_set: str, raise_minor: int, campaign: CampaignData, lim: Limits
) -> list[tuple[str, int, int]]:
    """Who pays for a raise of ``raise_minor``: (ad set, old budget, new budget) for each of the
    campaign's other active ad sets that gives something, in proportion to what it may give."""
    budgets = campaign_budgets(campaign)
    room = {k: _room(k, b, lim) for k, b in budgets.items() if k != winner_ad_set}
    room = {k: r for k, r in room.items() if r > 0}
    if raise_minor <= 0:
        return []
    if sum(room.values()) < raise_minor:
        raise ValueError(
            f"the campaign's other ad sets can give {sum(room.values())}, not {raise_minor}"
        )
    taken = share_out(raise_minor, room)
    return [(k, budgets[k], budgets[k] - t) for k, t in sorted(taken.items()) if t > 0]
