"""The data-health circuit breaker: refuse to learn from actuals that look broken (loop 6).

He et al. (2014) warn that when the click stream goes stale the training data shows a CTR near
zero and the model learns to predict near zero; they disconnect the trainer when the training
data changes abruptly. Here the breaker looks at the account's recent hourly actuals and opens
(trips) on any of:

- ``stale``: no actuals at all for the last ``max_staleness_hours`` hours;
- ``missing_hours``: more than ``max_missing_hours`` of the last ``window_hours`` hours absent;
- ``zero_impressions``: rows keep arriving but every active ad shows zero impressions for
  ``zero_impression_hours`` hours in a row;
- ``zero_click_run``: the latest hours show impressions but not one click, and under the
  account's reference CTR the chance of that is below ``p_value`` (so a small account's quiet
  hour does not trip it, a broken click feed does);
- ``clicks_collapsed``: the last ``collapse_hours`` hours have under ``collapse_ratio`` of the
  expected clicks, again with a Poisson tail probability below ``p_value``;
- ``implausible_counts``: any row with clicks above impressions or a negative count.

While open, the service does not retrain and does not feed the drift detectors; it raises an
alert instead. Hours whose data is present but implausible (the last four checks) are suspect:
predictions whose window touches them are never scored. Absent hours (stale, missing) are not
suspect: predictions wait for them, and score normally if they arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scipy import stats

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class HourHealth:
    """One hour of an account's actuals as stored: how many ad rows and their totals."""

    hour: datetime
    rows: int
    impressions: int
    clicks: int
    bad_rows: int = 0  # rows with clicks > impressions or negative counts


@dataclass(frozen=True, slots=True)
class BreakerParams:
    window_hours: int = 24
    max_staleness_hours: int = 6
    max_missing_hours: int = 3
    zero_impression_hours: int = 3
    collapse_hours: int = 6
    collapse_ratio: float = 0.1
    p_value: float = 1e-6

    def __post_init__(self) -> None:
        if min(self.window_hours, self.max_staleness_hours, self.zero_impression_hours) < 1:
            raise ValueError("window, staleness and zero-impression hours must be >= 1")
        if self.max_missing_hours < 0 or self.collapse_hours < 1:
            raise ValueError("max_missing_hours must be >= 0 and collapse_hours >= 1")
        if not 0 < self.collapse_ratio < 1 or not 0 < self.p_value < 1:
            raise ValueError("collapse_ratio and p_value must be in (0, 1)")


@dataclass(frozen=True, slots=True)
class BreakerVerdict:
    open: bool
    reasons: tuple[str, ...]
    evidence: dict[str, Any] = field(default_factory=dict)
    suspect_start: datetime | None = None  # the hours not to learn from: [start, end)
    suspect_end: datetime | None = None


def check_health(
    hours: Sequence[HourHealth],
    *,
    as_of: datetime,
    active_ads: int,
    reference_ctr: float | None,
    params: BreakerParams | None = None,
    data_since: datetime | None = None,
) -> BreakerVerdict:
    """Judge the hours before ``as_of`` (``as_of`` itself has not ended). ``hours`` holds the
    stored hours of the window (absent hours are simply not there); ``reference_ctr`` is the
    account's CTR before the window (None: the click checks are skipped, there is no baseline);
    ``data_since`` is the account's first hour of actuals (hours before it are not "missing")."""
    p = params or BreakerParams()
    if active_ads <= 0:
        return BreakerVerdict(False, (), {"active_ads": 0})
    start = as_of - p.window_hours * HOUR
    by_hour = {h.hour: h for h in hours if start <= h.hour < as_of}
    window = [start + i * HOUR for i in range(p.window_hours)]
    reasons: list[str] = []
    evidence: dict[str, Any] = {"active_ads": active_ads, "reference_ctr": reference_ctr}
    suspects: list[tuple[datetime, datetime]] = []

    present = sorted(by_hour)
    last = present[-1] if present else None
    evidence["last_hour_with_data"] = last.isoformat() if last else None
    stale_since = as_of - p.max_staleness_hours * HOUR
    if last is None or last < stale_since:
        reasons.append("stale")
    missing = [h for h in window if h not in by_hour and (data_since is None or h >= data_since)]
    evidence["missing_hours"] = len(missing)
    if len(missing) > p.max_missing_hours:
        reasons.append("missing_hours")

    bad = [h for h in present if by_hour[h].bad_rows > 0]
    if bad:
        reasons.append("implausible_counts")
        evidence["implausible_hours"] = [h.isoformat() for h in bad]
        suspects.append((bad[0], bad[-1] + HOUR))

    # Trailing runs over the hours that did arrive, newest first.
    zero_imp = _trailing(present, lambda h: by_hour[h].impressions == 0)
    if len(zero_imp) >= p.zero_impression_hours:
        reasons.append("zero_impressions")
        evidence["zero_impression_hours"] = len(zero_imp)
        suspects.append((zero_imp[-1], as_of))

    if reference_ctr is not None and reference_ctr > 0:
        run = _trailing(present, lambda h: by_hour[h].clicks == 0 and by_hour[h].impressions > 0)
        expected = reference_ctr * sum(by_hour[h].impressions for h in run)
        p_zero = float(stats.poisson.pmf(0, expected)) if expected > 0 else 1.0
        if run and p_zero < p.p_value:
            reasons.append("zero_click_run")
            evidence["zero_click_hours"] = len(run)
            evidence["zero_click_expected_clicks"] = expected
            suspects.append((run[-1], as_of))
        recent = [h for h in present if h >= as_of - p.collapse_hours * HOUR]
        imps = sum(by_hour[h].impressions for h in recent)
        clicks = sum(by_hour[h].clicks for h in recent)
        expected_recent = reference_ctr * imps
        if expected_recent > 0 and clicks < p.collapse_ratio * expected_recent:
            tail = float(stats.poisson.cdf(clicks, expected_recent))
            if tail < p.p_value and "zero_click_run" not in reasons:
                reasons.append("clicks_collapsed")
                evidence["collapse"] = {"clicks": clicks, "expected": expected_recent, "p": tail}
                suspects.append((recent[0], as_of))

    if not reasons:
        return BreakerVerdict(False, (), evidence)
    return BreakerVerdict(
        True,
        tuple(reasons),
        evidence,
        suspect_start=min((s for s, _ in suspects), default=None),
        suspect_end=max((e for _, e in suspects), default=None),
    )


def _trailing(hours: list[datetime], predicate: Any) -> list[datetime]:
    """The newest consecutive run of hours (newest first) for which ``predicate`` holds."""
    out: list[datetime] = []
    for h in reversed(hours):
        if out and out[-1] - h != HOUR:
            break
        if not predicate(h):
            break
        out.append(h)
    return out
