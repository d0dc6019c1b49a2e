"""Clear losers inside one ad set: which active ad to pause, if any (issue #16).

Ads that share an ad set budget (several ads per ad set, or a campaign budget) cannot be given
budgets of their own; the one thing the service may do to one of them is set its status. An ad
is paused only when all of these hold:

* *Evidence*: it and the best active sibling each have ``min_impressions`` in the window. The
  default 1,000 is the promoter's minimum per arm: below it a click rate of about 1% rests on
  about ten clicks, and the normal approximation behind the test is poor.
* *An always-valid test* (``loops/promoter/sequential``: the mSPRT and its confidence
  sequence) says at level ``alpha`` that its click rate is below the best sibling's: the
  always-valid p-value of "no difference" is at most the level and the estimate is below the
  best's (the report shows the confidence sequence of ``rate / best rate`` beside it). The
  service looks every hour, and an always-valid test may be looked at every hour without
  inflating its error, where a fixed-sample z-test checked hourly for two weeks would pause
  equal ads far more often than ``alpha``. The level is Bonferroni-corrected over the pairs of
  the ad set's active ads: the best is chosen from the data, so when no ad is truly worse a
  pause needs one pair's test to err, and the ad set's chance of any false pause, over every
  hourly look, stays at most ``alpha`` (per ad sibling would allow up to ``n/2 * alpha``).
* *Never the last active ad*, and *at most one pause per ad set per call* (the worst clear
  loser), so the ad set's delivery shifts to the others and evidence builds again before the
  next pause.
* *Pauses only*: an inactive ad (paused by the advertiser, or earlier by the service) is never
  compared, and nothing here ever proposes to re-activate one.

The compared rate is clicks per impression (CTR), for the click objectives (``ctr`` and
``clicks_per_dollar``): ads of one ad set buy impressions in the same auctions for the same
audience, so cost per impression is close to shared and CTR carries the difference. For
conversion and revenue objectives CTR can point the wrong way (a clickbait ad), so nothing is
paused there until conversions are compared (a decision for later, not a silent default).

The test is stratified by hour when the caller gives hourly counts (the service does): Meta's
delivery split between the ads of an ad set moves with the hour while click rates move with the
hour too, and pooled counts would then compare the ads at different mixes of hours (``_Stats``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from adflywheel.core.domain import Objective
from adflywheel.loops.promoter.sequential import (
    always_valid_p_value,
    cs_half_width,
    mh_log_ratio,
)

COMPARED_OBJECTIVES = frozenset({Objective.CTR, Objective.CLICKS_PER_DOLLAR})
Floats = NDArray[np.float64]
IntArray = NDArray[np.int64]
HALF = 0.5  # Haldane's correction for an ad without a click (its log rate is otherwise -inf)


@dataclass(frozen=True, slots=True)
class PauseSettings:
    """``min_drop``: the smallest drop of CTR worth acting on; it sets the test's mixing standard
    deviation ``-log(1 - min_drop)`` (the test is sharpest when a drop of that size first becomes
    detectable, as ``sequential`` explains), unless ``mixing_sd`` is given."""

    min_impressions: int = 1_000
    alpha: float = 0.05
    min_drop: float = 0.20
    mixing_sd: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.min_impressions, bool) or not isinstance(self.min_impressions, int):
            raise ValueError("min_impressions must be an integer")
        if self.min_impressions < 1:
            raise ValueError("min_impressions must be >= 1")
        if not 0 < self.alpha < 0.5:
            raise ValueError("alpha must be in (0, 0.5)")
        if not 0 < self.min_drop < 1:
            raise ValueError("min_drop must be in (0, 1)")
        if self.mixing_sd is not None and not (
            math.isfinite(self.mixing_sd) and 0 < self.mixing_sd <= 5
        ):
            raise ValueError("mixing_sd must be in (0, 5]")

    @property
    def tau(self) -> float:
        return self.mixing_sd if self.mixing_sd is not None else -math.log1p(-self.min_drop)


@dataclass(frozen=True, slots=True)
class AdCounts:
    """One ad of the ad set, its counts summed over the evidence window (the evidence and the
    rates), and optionally per hour (the test, stratified): ``hourly_impressions`` and
    ``hourly_clicks`` over the same hours for every ad of the ad set, oldest first. Without
    them the window is one period."""

    ad_id: str
    active: bool
    impressions: int
    clicks: int
    spend_minor: int = 0
    hourly_impressions: Sequence[int] | IntArray = ()
    hourly_clicks: Sequence[int] | IntArray = ()
    hours: int = field(init=False)

    def __post_init__(self) -> None:
        if self.impressions < 0 or self.clicks < 0 or self.spend_minor < 0:
            raise ValueError(f"ad {self.ad_id!r}: counts must be >= 0")
        if self.clicks > self.impressions:
            raise ValueError(f"ad {self.ad_id!r}: more clicks than impressions")
        hours = len(self.hourly_impressions)
        if len(self.hourly_clicks) != hours:
            raise ValueError(f"ad {self.ad_id!r}: give impressions and clicks for the same hours")
        object.__setattr__(self, "hours", hours)

    @property
    def rate(self) -> float:
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass(frozen=True, slots=True)
class Comparison:
    """One active ad against the best active sibling: the rate ratio ``rate / best_rate`` with
    its (1 - level) confidence sequence, the always-valid p-value of "no difference", and
    whether it is a clear loser (worse, with the p-value at most the level)."""

    ad_id: str
    best_ad_id: str
    impressions: int
    clicks: int
    spend_minor: int
    rate: float
    best_impressions: int
    best_clicks: int
    best_rate: float
    ratio: float
    ratio_low: float
    ratio_high: float
    p_value: float
    level: float  # alpha after the Bonferroni correction
    clear_loser: bool
    hours: int  # hours both ads delivered in (the test's strata); 1: the window as one period

    def evidence(self) -> dict[str, float | int | str | bool]:
        """JSON-able, for the audit record and the report."""
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class AdSetReview:
    """What the ad set's ads showed: ``pause`` is the one ad to pause, with its evidence (None:
    none); ``compared`` ads were tested against the best, the smallest p-value among them is
    ``smallest_p_value`` (1.0 when none was); ``why`` says what decided."""

    pause: Comparison | None
    active: int
    compared: int = 0
    smallest_p_value: float = 1.0
    why: str = ""


def review_ad_set(
    ads: Sequence[AdCounts],
    objective: Objective | str = Objective.CLICKS_PER_DOLLAR,
    settings: PauseSettings | None = None,
) -> AdSetReview:
    """The ad set's clear loser to pause this hour, if any (see the module notes)."""
    return review_ad_sets([ads], objective, settings)[0]


def review_ad_sets(
    ad_sets: Sequence[Sequence[AdCounts]],
    objective: Objective | str = Objective.CLICKS_PER_DOLLAR,
    settings: PauseSettings | None = None,
) -> list[AdSetReview]:
    """``review_ad_set`` for many ad sets of one objective, the statistics in one vectorised
    pass (a campaign's ad sets in the service; thousands in the error-rate check)."""
    s = settings or PauseSettings()
    plans = [_plan(ads, Objective(objective), s) for ads in ad_sets]
    pairs = [(p, ad) for p in plans if isinstance(p, _Pairs) for ad in p.others]
    stats = _Stats.of(
        [ad for _, ad in pairs], [p.best for p, _ in pairs], [p.level for p, _ in pairs], s.tau
    )
    out: list[AdSetReview] = []
    at = 0
    for plan in plans:
        if isinstance(plan, AdSetReview):
            out.append(plan)
            continue
        span = range(at, at + len(plan.others))
        at += len(plan.others)
        losers = [i for i in span if stats.clear_loser(i, plan.level)]
        compared, smallest = len(plan.others), min(stats.p_value[i] for i in span)
        if not losers:
            why = "no ad is clearly worse"
            out.append(AdSetReview(None, plan.active, compared, smallest, why))
            continue
        worst = min(losers, key=lambda i: (stats.log_ratio[i], stats.p_value[i]))
        pause = stats.comparison(worst, plan.others[worst - span.start], plan)
        out.append(
            AdSetReview(pause, plan.active, compared, smallest, "clearly worse than the best")
        )
    return out


@dataclass(frozen=True, slots=True)
class _Pairs:
    """An ad set ready to compare: its best active ad and the others with enough evidence."""

    best: AdCounts
    others: tuple[AdCounts, ...]
    active: int
    level: float


def _plan(ads: Sequence[AdCounts], objective: Objective, s: PauseSettings) -> _Pairs | AdSetReview:
    ids = [a.ad_id for a in ads]
    if len(set(ids)) != len(ids):
        raise ValueError("ad ids must be unique within an ad set")
    active = [a for a in ads if a.active]
    n = len(active)
    if objective not in COMPARED_OBJECTIVES:
        return AdSetReview(None, n, why=f"objective {objective.value} is not compared yet")
    if n < 2:
        return AdSetReview(None, n, why="fewer than two active ads")
    ready = [a for a in active if a.impressions >= s.min_impressions]
    if len(ready) < 2:
        return AdSetReview(None, n, why="fewer than two active ads with the minimum evidence")
    if len({a.hours for a in active}) > 1:
        raise ValueError("every active ad of an ad set needs the same hours (or none)")
    best = max(ready, key=lambda a: (a.rate, a.impressions, a.ad_id))
    if best.clicks == 0:
        return AdSetReview(None, n, why="no clicks yet: nothing to compare")
    others = tuple(sorted((a for a in ready if a is not best), key=lambda a: a.ad_id))
    # Bonferroni over every pair of active ads, not only those with evidence today (each may
    # be the best another hour): when no ad is truly worse, a pause needs one pair's test to
    # err, so the ad set's chance of any false pause stays at most alpha.
    return _Pairs(best, others, n, s.alpha / (n * (n - 1) / 2))


@dataclass(frozen=True, slots=True)
class _Stats:
    """Every pair's log rate ratio, always-valid p-value and confidence sequence, in arrays.

    Stratified by hour when the hours are given (the Mantel–Haenszel ratio of ``sequential``):
    an ad Meta shows mostly at hours of low click rates is compared with its sibling hour by
    hour, not on pooled counts that would make it look worse (Simpson's paradox), and an ad
    launched last week is compared only over the hours both ran. The p-value tests "no
    difference" with the variance the log ratio has under that hypothesis: given each hour's
    clicks of the pair, the ad's share of them is binomial, which gives ``1 / sum_k c_k N1_k
    N0_k / T_k^2`` (``c_k`` the pair's clicks, ``N`` impressions, ``T = N1 + N0``; unstratified
    it is the pooled two-proportion test's variance on the log scale). The confidence sequence
    uses the observed counts' variance (Greenland–Robins). An ad without a click is compared on
    the window's totals with Haldane's half click and half impression in both arms: its log
    ratio is then finite, and with the null variance a zero-click ad among thousands of
    impressions can still be shown worse (the observed variance of half a click never shrinks).
    """

    log_ratio: list[float]
    low: list[float]
    high: list[float]
    p_value: list[float]
    hours: list[int]

    @classmethod
    def of(
        cls, ads: list[AdCounts], bests: list[AdCounts], levels: list[float], tau: float
    ) -> _Stats:
        width = max([1, *(a.hours for a in ads)])
        n1, x1, n0, x0 = (np.zeros((len(ads), width)) for _ in range(4))
        by_hours: dict[int, list[int]] = {}
        for i, (ad, best) in enumerate(zip(ads, bests, strict=True)):
            if ad.hours and ad.clicks > 0:
                by_hours.setdefault(ad.hours, []).append(i)
            else:
                half_click = HALF if ad.clicks == 0 else 0.0
                n1[i, 0], x1[i, 0] = ad.impressions + half_click, ad.clicks + half_click
                n0[i, 0], x0[i, 0] = best.impressions + half_click, best.clicks + half_click
        for k, rows in by_hours.items():  # whole blocks: one copy per array
            n1[rows, :k] = [ads[i].hourly_impressions for i in rows]
            x1[rows, :k] = [ads[i].hourly_clicks for i in rows]
            n0[rows, :k] = [bests[i].hourly_impressions for i in rows]
            x0[rows, :k] = [bests[i].hourly_clicks for i in rows]
        estimate = mh_log_ratio(n1, x1, n0, x0)
        both = (n1 > 0) & (n0 > 0)
        total = np.where(both, n1 + n0, 1.0)
        info = np.where(both, (x1 + x0) * n1 * n0 / total**2, 0.0).sum(-1)
        null_variance = np.where(info > 0, 1.0 / np.where(info > 0, info, 1.0), np.nan)
        alpha = np.array(levels, dtype=np.float64)
        half: Floats = np.zeros(len(ads))
        for level in set(levels):  # one level per ad set size
            at = alpha == level
            half[at] = cs_half_width(estimate.variance[at], tau, level)
        est = estimate.log_ratio
        p_value = always_valid_p_value(est, null_variance, tau)
        return cls(
            est.tolist(),
            (est - half).tolist(),
            (est + half).tolist(),
            p_value.tolist(),
            both.sum(-1).tolist(),
        )

    def clear_loser(self, i: int, level: float) -> bool:
        est = self.log_ratio[i]
        return math.isfinite(est) and est < 0.0 and self.p_value[i] <= level

    def comparison(self, i: int, ad: AdCounts, pairs: _Pairs) -> Comparison:
        est, p = self.log_ratio[i], self.p_value[i]
        estimable = math.isfinite(est)
        best = pairs.best
        return Comparison(
            ad_id=ad.ad_id,
            best_ad_id=best.ad_id,
            impressions=ad.impressions,
            clicks=ad.clicks,
            spend_minor=ad.spend_minor,
            rate=ad.rate,
            best_impressions=best.impressions,
            best_clicks=best.clicks,
            best_rate=best.rate,
            ratio=_exp(est) if estimable else ad.rate / best.rate,
            ratio_low=_exp(self.low[i]) if estimable else 0.0,
            ratio_high=_exp(self.high[i]) if estimable else _MAX_RATIO,
            p_value=p if estimable else 1.0,
            level=pairs.level,
            clear_loser=self.clear_loser(i, pairs.level),
            hours=self.hours[i],
        )


_MAX_RATIO = 1e6  # an unbounded interval's upper end (JSON has no infinity)


def _exp(x: float) -> float:
    if not math.isfinite(x):
        return 0.0 if x < 0 else _MAX_RATIO
    return min(math.exp(min(x, 50.0)), _MAX_RATIO)
