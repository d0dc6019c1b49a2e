"""The holdout report: what the flywheel earned on an account against the campaigns it left alone.

Reads only what is stored for the account (real actuals, as fetched or posted), splits its
campaigns with the core's deterministic ``in_holdout`` and answers the core's comparison.

- Clicks per dollar come from the hourly actuals of the UTC hours in ``[since, until)``.
- Conversions per dollar come from the daily actuals when the account has any in the period's whole
  account-local days: Meta's hourly breakdown drops off-Meta conversions, so only the daily rows
  carry them; their own daily spend is the denominator, so numerator and denominator cover the
  same days. An account without daily rows (CSV or API uploads that carry conversions hourly) is
  answered from the hourly rows. The answer names the source of each.
- ``held_out_budget_changes`` lists held-out campaigns whose budgets the service changed (not a
  dry run) in the period: the holdout was not honoured there and the comparison is contaminated.

Synthetic data from the simulated market is never read here: a caller that runs this on a
simulated account labels the answer itself.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adflywheel.core.clock import ensure_utc
from adflywheel.core.errors import InvalidInputError, NotFoundError
from adflywheel.loops.bandit import (
    ArmSummary,
    CampaignTotals,
    RatioEstimate,
    holdout_comparison,
    in_holdout,
)
from adflywheel.platforms.base import minor_unit_exponent
from adflywheel.services.bandit.edits import DRY_EDIT_MODES
from adflywheel.store.models import Account, AdSet, BudgetChange, DailyActualRow, Variant
from adflywheel.store.queries import campaigns_of, variant_totals

SOURCE = "stored actuals"
HOURLY = "hourly actuals"
DAILY = "daily actuals"


def holdout_report(
    session: Session,
    account_id: int,
    share: float,
    since: datetime,
    until: datetime,
    salt: str = "",
    *,
    seed: int = 0,
    min_campaigns: int = 2,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Managed against held-out campaigns of the account over ``[since, until)`` (UTC).

    ``share`` is the account's holdout share in [0, 1); 0 (off) answers ``enabled: False`` with
    no comparison. Raises ``InvalidInputError`` for a bad share or window, ``NotFoundError`` for
    an unknown account."""
    since, until = ensure_utc(since), ensure_utc(until)
    if since >= until:
        raise InvalidInputError("since must be before until")
    try:
        in_holdout(account_id, "", share, salt)  # validates the share
    except ValueError as error:
        raise InvalidInputError(str(error)) from error
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}")
    campaigns = campaigns_of(session, account_id)
    held_ids = {c.id for c in campaigns if in_holdout(account_id, c.external_id, share, salt)}
    external = {c.id: c.external_id for c in campaigns}
    out: dict[str, Any] = {
        "enabled": share > 0.0,
        "source": SOURCE,
        "share": share,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "currency": account.currency,
        "managed_campaigns": sorted(external[i] for i in external if i not in held_ids),
        "held_out_campaigns": sorted(external[i] for i in held_ids),
    }
    if share == 0.0:
        return {
            **out,
            "note": (
                "the holdout is off (share 0, the default): every campaign is managed and there "
                "is nothing to compare against; set holdout_share in the account's guardrails"
            ),
            "sources": None,
            "managed": None,
            "held_out": None,
            "clicks_per_dollar": None,
            "conversions_per_dollar": None,
            "confidence": confidence,
            "method": None,
            "held_out_budget_changes": [],
        }
    hourly = _hourly_totals(session, account_id, external, since, until)
    days = _whole_local_days(since, until, account.timezone)
    daily = _daily_totals(session, account_id, external, days) if days else {}
    conversion_rows = daily if daily else hourly
    exponent = minor_unit_exponent(account.currency)
    options: dict[str, Any] = {
        "exponent": exponent,
        "min_campaigns": min_campaigns,
        "confidence": confidence,
        "seed": seed,
    }
    clicks = holdout_comparison(
        (t for i, t in hourly.items() if i not in held_ids),
        (t for i, t in hourly.items() if i in held_ids),
        **options,
    )
    conversions = holdout_comparison(
        (t for i, t in conversion_rows.items() if i not in held_ids),
        (t for i, t in conversion_rows.items() if i in held_ids),
        **options,
    )
    conversion_source = DAILY if daily else HOURLY
    return {
        **out,
        "note": _note(clicks.reason),
        "sources": {
            "clicks_per_dollar": HOURLY,
            "conversions_per_dollar": conversion_source,
            "conversion_days": (
                [days[0].isoformat(), days[-1].isoformat()] if daily and days else None
            ),
        },
        "managed": _arm(clicks.managed, conversions.managed),
        "held_out": _arm(clicks.held, conversions.held),
        "clicks_per_dollar": _estimate(clicks.clicks_per_dollar),
        "conversions_per_dollar": _estimate(conversions.conversions_per_dollar),
        "confidence": confidence,
        "method": clicks.method,
        "held_out_budget_changes": _changed(session, account_id, held_ids, external, since, until),
    }


def _note(reason: str | None) -> str:
    if reason is not None:
        return f"not enough to compare yet: {reason}"
    return (
        "ratios are managed / held-out; an interval that contains 1 means no difference was "
        "detected, whatever the point estimate"
    )


def _hourly_totals(
    session: Session, account_id: int, external: dict[int, str], since: datetime, until: datetime
) -> dict[int, CampaignTotals]:
    """Every campaign's clicks, conversions and spend over the UTC hours (zero when silent)."""
    sums = {cid: [0, 0, 0] for cid in external}
    for v in variant_totals(session, account_id, since=since, until=until):
        total = sums.setdefault(v.campaign_id, [0, 0, 0])
        total[0] += v.clicks
        total[1] += v.conversions
        total[2] += v.spend_minor
    return {cid: CampaignTotals(external.get(cid, str(cid)), *s) for cid, s in sums.items()}


def _whole_local_days(since: datetime, until: datetime, timezone: str) -> list[date]:
    """The account-local days lying wholly inside ``[since, until)``."""
    zone = ZoneInfo(timezone)
    first = since.astimezone(zone).date()
    if datetime.combine(first, time(), zone) < since:
        first += timedelta(days=1)
    days = []
    day = first
    while datetime.combine(day + timedelta(days=1), time(), zone) <= until:
        days.append(day)
        day += timedelta(days=1)
    return days


def _daily_totals(
    session: Session, account_id: int, external: dict[int, str], days: list[date]
) -> dict[int, CampaignTotals]:
    """Per campaign, the daily rows of those days; empty when the account has none there."""
    rows = session.execute(
        select(
            Variant.campaign_id,
            func.sum(DailyActualRow.clicks),
            func.sum(DailyActualRow.conversions),
            func.sum(DailyActualRow.spend_minor),
        )
        .join(Variant, Variant.id == DailyActualRow.variant_id)
        .where(
            DailyActualRow.account_id == account_id,
            DailyActualRow.day >= days[0],
            DailyActualRow.day <= days[-1],
        )
        .group_by(Variant.campaign_id)
    ).all()
    if not rows:
        return {}
    found = {cid: (int(c or 0), int(v or 0), int(s or 0)) for cid, c, v, s in rows}
    return {cid: CampaignTotals(name, *found.get(cid, (0, 0, 0))) for cid, name in external.items()}


def _changed(
    session: Session,
    account_id: int,
    held_ids: set[int],
    external: dict[int, str],
    since: datetime,
    until: datetime,
) -> list[str]:
    if not held_ids:
        return []
    touched = session.scalars(
        select(AdSet.campaign_id)
        .join(BudgetChange, BudgetChange.ad_set_id == AdSet.id)
        .where(
            BudgetChange.account_id == account_id,
            BudgetChange.mode.not_in(DRY_EDIT_MODES),  # recorded, never written
            BudgetChange.created_at >= since,
            BudgetChange.created_at < until,
            AdSet.campaign_id.in_(held_ids),
        )
        .distinct()
    )
    return sorted(external[c] for c in touched)


def _arm(clicks: ArmSummary, conversions: ArmSummary) -> dict[str, Any]:
    return {
        "campaigns": clicks.campaigns,
        "campaigns_without_spend": clicks.campaigns_without_spend,
        "clicks": clicks.clicks,
        "spend_minor": clicks.spend_minor,
        "clicks_per_dollar": clicks.clicks_per_dollar,
        "conversions": conversions.conversions,
        "conversion_spend_minor": conversions.spend_minor,
        "conversions_per_dollar": conversions.conversions_per_dollar,
    }


def _estimate(estimate: RatioEstimate) -> dict[str, Any]:
    out = asdict(estimate)
    out["interval"] = list(estimate.interval) if estimate.interval is not None else None
    return out
