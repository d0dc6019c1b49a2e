"""Who is a winner: CTR above the account's threshold, with evidence, and what happens later.

A variant qualifies when it has at least ``min_impressions``, its observed CTR clears the
threshold, and the Beta posterior (uniform Beta(1, 1) prior, clicks over impressions) puts
probability at least ``min_probability`` on its true CTR being above the threshold: 3 clicks on
80 impressions never qualifies. A winner is never deleted: it *lapses* when, with enough
impressions, the posterior probability drops below ``lapse_probability`` (default 0.5: the CTR
is now more likely below the threshold than above). The gap between the two levels is
hysteresis, so a winner hovering near the line does not flap every hour. A lapsed winner that
clears the bar again is re-qualified. Winners added by hand are the account's own judgement and
are not lapsed automatically.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from scipy import stats

PRIOR_ALPHA = 1.0
PRIOR_BETA = 1.0


class WinnerStatus(StrEnum):
    QUALIFIED = "qualified"
    LAPSED = "lapsed"


class WinnerSource(StrEnum):
    CYCLE = "cycle"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class WinnerPolicy:
    """The bar a variant must clear (rates are fractions)."""

    threshold_ctr: float = 0.03
    min_impressions: int = 1_000
    min_probability: float = 0.95
    lapse_probability: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold_ctr < 1.0:
            raise ValueError("threshold_ctr must be in (0, 1)")
        if self.min_impressions < 1:
            raise ValueError("min_impressions must be at least 1")
        if not 0.5 <= self.min_probability < 1.0:
            raise ValueError("min_probability must be in [0.5, 1)")
        if not 0.0 < self.lapse_probability <= self.min_probability:
            raise ValueError("lapse_probability must be in (0, min_probability]")


@dataclass(frozen=True, slots=True)
class Evaluation:
    impressions: int
    clicks: int
    ctr: float
    probability_above: float  # P(true CTR > threshold | data)
    enough_data: bool
    qualifies: bool
    fails: bool  # enough data and the probability is below the lapse level


def probability_above(clicks: int, impressions: int, threshold: float) -> float:
    """P(CTR > threshold) under the Beta(1 + clicks, 1 + impressions − clicks) posterior."""
    if impressions < 0 or clicks < 0 or clicks > impressions:
        raise ValueError("need 0 <= clicks <= impressions")
    a = PRIOR_ALPHA + clicks
    b = PRIOR_BETA + impressions - clicks
    return float(stats.beta.sf(threshold, a, b))


def evaluate(clicks: int, impressions: int, policy: WinnerPolicy) -> Evaluation:
    """The evidence for one variant against the policy."""
    p = probability_above(clicks, impressions, policy.threshold_ctr)
    ctr = clicks / impressions if impressions else 0.0
    enough = impressions >= policy.min_impressions
    qualifies = enough and ctr >= policy.threshold_ctr and p >= policy.min_probability
    fails = enough and p < policy.lapse_probability
    return Evaluation(impressions, clicks, ctr, p, enough, qualifies, fails)


def transition(
    status: WinnerStatus | None, source: WinnerSource | None, evaluation: Evaluation
) -> tuple[WinnerStatus, str] | None:
    """The new status and the event name, or None when nothing changes.

    ``status`` None means "not in memory yet"."""
    if status is None:
        return (WinnerStatus.QUALIFIED, "qualified") if evaluation.qualifies else None
    if status is WinnerStatus.QUALIFIED:
        if evaluation.fails and source is not WinnerSource.MANUAL:
            return WinnerStatus.LAPSED, "lapsed"
        return None
    if evaluation.qualifies:
        return WinnerStatus.QUALIFIED, "requalified"
    return None
