"""The overview page's view: the account's last 30 days against its own baseline, what the
flywheel did in the last 24 hours, open alerts, the mode and the holdout.

The daily series reads the account's running totals per hour (``store.rollups``, about 720 rows
for the month whatever the number of ads), folded into the account's local days here: portable
between SQLite and PostgreSQL, and never the hourly rows themselves. The baseline of a metric is
its mean per day over the window's days before the last seven, from the account's first day
of delivery, so "this week" reads against "your usual".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adflywheel.console.views.activity import ActivityItem, Money, recent_activity
from adflywheel.core.clock import floor_hour
from adflywheel.core.errors import NotFoundError
from adflywheel.platforms.base import minor_unit_exponent
from adflywheel.services.alerts import recent_alerts
from adflywheel.services.bandit.holdout import holdout_report
from adflywheel.services.promoter.settings import load_settings
from adflywheel.store.models import Account, Campaign, CycleRun
from adflywheel.store.rollups import account_hours

WINDOW_DAYS = 30
RECENT_DAYS = 7  # "this week", against the days before it
ACTIVITY_HOURS = 24
ALERT_DAYS = 3  # alerts of the last three days are shown as open
HOLDOUT_DAYS = 28


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One account-local day: sums over every ad (money in minor units)."""

    day: date
    impressions: int
    clicks: int
    spend_minor: int
    conversions: int


@dataclass(frozen=True, slots=True)
class Metric:
    """One line of the overview: a value per day, the baseline, and this week against it."""

    key: str  # spend, clicks, conversions, clicks_per_dollar, conversions_per_dollar
    label: str
    unit: str  # money (minor units), count, per_unit (per major currency unit)
    values: tuple[float | None, ...]  # one per day of ``Overview.days``; None: no spend that day
    baseline: float | None  # mean per day before the last week; None: not enough history
    recent: float | None  # mean per day over the last week
    change: float | None  # recent / baseline - 1


@dataclass(frozen=True, slots=True)
class AlertView:
    id: int
    kind: str
    message: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ModeView:
    mode: str  # recommend | autopilot
    autopilot_ready: bool
    autopilot_missing: str | None  # what autopilot needs first (None: nothing)


@dataclass(frozen=True, slots=True)
class HoldoutView:
    """What the flywheel earned against the campaigns it left alone; ``sentence`` says it."""

    share: float
    days: int
    sentence: str
    ratio: float | None = None
    low: float | None = None
    high: float | None = None  # None: unbounded
    managed_campaigns: int = 0
    held_out_campaigns: int = 0


@dataclass(frozen=True, slots=True)
class Overview:
    account_id: int
    account_name: str
    currency: str
    timezone: str
    now: datetime
    campaigns: int
    days: tuple[date, ...]
    metrics: tuple[Metric, ...]
    activity: tuple[ActivityItem, ...]
    activity_total: int
    alerts: tuple[AlertView, ...]
    mode: ModeView
    holdout_share: float  # 0: no holdout (its report is a fragment of its own: a second scan)
    last_cycle_at: datetime | None
    has_actuals: bool
    baseline_days: int = 0  # the whole days "your usual" is the mean of

    @property
    def empty(self) -> bool:
        """Nothing to show yet: no campaign, or no delivery in the window."""
        return self.campaigns == 0 or not self.has_actuals


def daily_totals(
    session: Session, account_id: int, since: datetime, until: datetime, timezone: str
) -> dict[date, DayTotals]:
    """Sums per account-local day of the hours in ``[since, until)``, from the account's
    running hourly totals (``store.rollups``: about 720 rows for 30 days, whatever the number
    of ads), folded into local days here."""
    zone = ZoneInfo(timezone)
    sums: dict[date, list[int]] = {}
    for hour, found in account_hours(session, account_id, since=since, until=until):
        day = hour.astimezone(zone).date()
        total = sums.setdefault(day, [0, 0, 0, 0])
        total[0] += found.impressions
        total[1] += found.clicks
        total[2] += found.spend_minor
        total[3] += found.conversions
    return {day: DayTotals(day, *s) for day, s in sums.items()}


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def baseline_start(rows: list[DayTotals]) -> int:
    """The index of the first day with any delivery (``len(rows)`` when there is none)."""
    return next((i for i, r in enumerate(rows) if r.impressions or r.spend_minor), len(rows))


def baseline_days(
    days: tuple[date, ...], totals: dict[date, DayTotals], recent_days: int = RECENT_DAYS
) -> int:
    """How many whole days before the last ``recent_days`` make "your usual" (today, still
    running, is in ``days`` but in neither period)."""
    empty = DayTotals(date.min, 0, 0, 0, 0)
    whole = [totals.get(d, empty) for d in days[:-1]]
    split = max(len(whole) - recent_days, 0)
    return max(split - baseline_start(whole), 0)


def metrics(
    days: list[date],
    totals: dict[date, DayTotals],
    exponent: int,
    recent_days: int = RECENT_DAYS,
    *,
    partial_last: bool = False,
) -> tuple[Metric, ...]:
    """The five lines of the overview, each with its baseline and this week's change.

    The rates per day divide that day's sums (a day without spend has no rate); the baseline
    and recent values of a rate are the rate of the period's sums, not a mean of daily rates.
    ``partial_last``: the last day is today, still running: shown, left out of both periods."""
    unit = float(10**exponent)
    empty = DayTotals(date.min, 0, 0, 0, 0)
    rows = [totals.get(d, empty) for d in days]
    # today is still running: drawn, but not compared (a half day would read as a drop)
    whole = rows[:-1] if partial_last else rows
    split = max(len(whole) - recent_days, 0)
    # "Usual" starts at the account's first day of delivery in the window: the empty days before
    # an account began would read as a low baseline and every week as a jump.
    start = baseline_start(whole)
    before, recent = whole[min(start, split) : split], whole[split:]

    def per(count: int, spend: int) -> float | None:
        return count / (spend / unit) if spend > 0 else None

    def summed(part: list[DayTotals], field: str) -> int:
        return sum(int(getattr(r, field)) for r in part)

    def change(recent_value: float | None, baseline: float | None) -> float | None:
        if recent_value is None or baseline is None or baseline == 0:
            return None
        return recent_value / baseline - 1.0

    out: list[Metric] = []
    for key, label, field, kind in (
        ("spend", "Spend", "spend_minor", "money"),
        ("clicks", "Clicks", "clicks", "count"),
        ("conversions", "Conversions", "conversions", "count"),
    ):
        values: list[float | None] = [float(getattr(r, field)) for r in rows]
        base = summed(before, field) / len(before) if before else None
        now = summed(recent, field) / len(recent) if recent else None
        # an account younger than a week has no baseline: nothing to compare against
        base = base if before and any(r.spend_minor > 0 for r in before) else None
        out.append(Metric(key, label, kind, tuple(values), base, now, change(now, base)))
    for key, label, field in (
        ("clicks_per_dollar", "Clicks per", "clicks"),
        ("conversions_per_dollar", "Conversions per", "conversions"),
    ):
        values = [per(int(getattr(r, field)), r.spend_minor) for r in rows]
        base = per(summed(before, field), summed(before, "spend_minor"))
        now = per(summed(recent, field), summed(recent, "spend_minor"))
        out.append(Metric(key, label, "per_unit", tuple(values), base, now, change(now, base)))
    return tuple(out)


def mode_view(session: Session, account_id: int) -> ModeView:
    g = load_settings(session, account_id).guardrails
    missing = g.autopilot_problem()
    return ModeView(g.mode.value, missing is None, missing)


def holdout_view(
    session: Session, account_id: int, now: datetime, currency: str, days: int = HOLDOUT_DAYS
) -> HoldoutView | None:
    """The holdout report in words (None when the holdout is off): the services' comparison."""
    share = float(load_settings(session, account_id).guardrails.holdout_share)
    if share <= 0.0:
        return None
    until = floor_hour(now)
    report = holdout_report(session, account_id, share, until - timedelta(days=days), until)
    managed = len(report.get("managed_campaigns") or [])
    held = len(report.get("held_out_campaigns") or [])
    estimate: dict[str, Any] | None = report.get("clicks_per_dollar")
    ratio = estimate.get("ratio") if estimate else None
    interval = estimate.get("interval") if estimate else None
    if ratio is None or not interval:
        why = str(report.get("note") or "not enough to compare yet")
        return HoldoutView(share, days, why[0].upper() + why[1:], None, None, None, managed, held)
    low = float(interval[0])
    high = float(interval[1]) if interval[1] is not None else None
    upper = f"{high - 1:+.0%}" if high is not None else "no upper bound"
    words = f"{ratio - 1:+.0%} clicks per {currency} on the {managed} campaigns the flywheel "
    words += f"manages against the {held} it left alone, over {days} days "
    words += f"(between {low - 1:+.0%} and {upper}"
    if low <= 1.0 and (high is None or high >= 1.0):
        words += ": no difference detected yet)"
    else:
        words += ")"
    return HoldoutView(share, days, words, float(ratio), low, high, managed, held)


def build_overview(
    session: Session, account_id: int, now: datetime, money: Money, *, days: int = WINDOW_DAYS
) -> Overview:
    """Everything the overview shows, as of ``now`` (UTC). ``money`` formats minor units in
    the account's currency (the sentences carry amounts)."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFoundError(f"no account {account_id}")
    zone = ZoneInfo(account.timezone)
    until = floor_hour(now)
    today = now.astimezone(zone).date()
    shown = [today - timedelta(days=days - 1 - i) for i in range(days)]
    first = datetime.combine(shown[0], datetime.min.time(), zone)
    totals = daily_totals(session, account_id, first, until, account.timezone)
    campaigns = int(
        session.scalar(select(func.count()).where(Campaign.account_id == account_id)) or 0
    )
    activity, total = recent_activity(
        session,
        account_id,
        now - timedelta(hours=ACTIVITY_HOURS),
        now + timedelta(seconds=1),
        money,
    )
    alerts = recent_alerts(session, account_id, since=now - timedelta(days=ALERT_DAYS), limit=10)
    last_cycle = session.scalar(
        select(func.max(CycleRun.finished_at)).where(CycleRun.account_id == account_id)
    )
    return Overview(
        account_id=account.id,
        account_name=account.name,
        currency=account.currency,
        timezone=account.timezone,
        now=now,
        campaigns=campaigns,
        days=tuple(shown),
        metrics=metrics(shown, totals, minor_unit_exponent(account.currency), partial_last=True),
        baseline_days=baseline_days(tuple(shown), totals),
        activity=tuple(activity),
        activity_total=total,
        alerts=tuple(
            AlertView(a["id"], a["kind"], a["message"], datetime.fromisoformat(a["created_at"]))
            for a in alerts
        ),
        mode=mode_view(session, account_id),
        holdout_share=float(load_settings(session, account_id).guardrails.holdout_share),
        last_cycle_at=last_cycle,
        has_actuals=any(t.impressions or t.spend_minor for t in totals.values()),
    )
