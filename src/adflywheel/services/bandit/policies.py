"""Budget policies the cycle can run: Thompson sampling (loop 2) and the baselines it is
measured against (uniform, epsilon-greedy, UCB1), all on the same plumbing.

Only Thompson honours the promoter's floors and the account ceiling (``CampaignState``'s
``min_budgets``/``max_budget_minor``); the baselines exist for the harness's comparisons.

A policy turns what the store knows of a campaign (``CampaignState``) into daily budgets for its
ad sets; ``budgets.apply_budgets`` writes them. Randomness is seeded per (seed, campaign, hour),
so a replay of the same hour proposes the same budgets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from adflywheel.core.attribution import CONVERSION_OBJECTIVES, DEFAULT_WINDOW_DAYS
from adflywheel.core.domain import Objective, per_dollar, safe_rate
from adflywheel.loops.bandit import (
    AllocationSettings,
    CampaignAllocation,
    CampaignEvidence,
    RatePrior,
    VariantEvidence,
    allocate_campaign,
    variant_from_hourly,
)
from adflywheel.services.bandit.budgets import CampaignState, Proposal, is_active, largest_remainder
from adflywheel.store.queries import VariantTotals

HOUR_SECONDS = 3600.0

# The service's Thompson defaults. The floor is 2% per variant rather than the core's 5%: with
# five to ten variants a 5% floor keeps a quarter to a half of the budget on exploration for
# ever; 2% keeps exploring while the simulated benchmark (benchmarks/RESULTS.md) gains ~2 points.
# The floors together take at most 5% of a campaign (so 2% each up to 2 variants, 1% at 5,
# 0.025% at 200): every point of budget held on floors cost about a third of a point of clicks
# against plain Thompson on the many-variant benchmark (issue #15, item 4), where a 10% bound
# gave 0.97-0.98 of its clicks at 20-200 variants and 5% gives 0.99.
THOMPSON_SETTINGS = AllocationSettings(floor_share=0.02, max_floor_total=0.05)


PriorProvider = Callable[[CampaignState, datetime], Mapping[int, RatePrior]]


def _hour_index(hour: datetime) -> int:
    return int(hour.timestamp() // HOUR_SECONDS)


class UniformPolicy:
    """The baseline: split each campaign's total equally over its active variants."""

    name = "uniform"

    def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
        active = [is_active(v) for v in campaign.variants]
        if not any(active):
            return Proposal({}, "uniform", {"note": "no active variant"})
        shares = largest_remainder(campaign.total_budget_minor, [1.0 if a else 0.0 for a in active])
        return Proposal(
            {
                v.ad_set_external_id: s
                for v, s, a in zip(campaign.variants, shares, active, strict=True)
                if a
            },
            "uniform",
            {"active_variants": sum(active)},
        )


@dataclass(frozen=True, slots=True)
class ThompsonPolicy:
    """Loop 2: budget shares from the probability of being best, with the allocator's floors,
    change cap, evidence gate and exact conservation; evidence discounted by its half-life."""

    settings: AllocationSettings = THOMPSON_SETTINGS
    seed: int = 0
    name: str = "thompson"
    # Optional model priors (loop 5's contextual boost): internal variant id -> RatePrior. None
    # keeps the allocator's own weak prior (the campaign's pooled rates).
    prior_provider: PriorProvider | None = None
    # The account's attribution window: on a conversion objective, the conversions of hours
    # younger than it (and a day) are still growing, and the proposal says which.
    attribution_window_days: int = DEFAULT_WINDOW_DAYS

    def provisional(self, campaign: CampaignState, hour: datetime) -> dict[str, Any] | None:
        """On a conversion objective, the hours whose conversions Meta may still restate: all
        from ``window + 1`` days before ``hour`` (in UTC, so a few final hours of the account's
        day may be counted among them, never the reverse), and their conversions per arm. The
        posterior still learns from them as they stand; the proposal reports them provisional."""
        if campaign.objective not in CONVERSION_OBJECTIVES:
            return None
        since = hour - timedelta(days=self.attribution_window_days + 1)
        hours: set[datetime] = set()
        conversions: dict[str, int] = {}
        for v in campaign.variants:
            series = campaign.hourly.get(v.variant_id)
            conversions[v.ad_set_external_id] = 0
            if series is None:
                continue
            for h, c in zip(series.hour_starts, series.conversions, strict=True):
                if h >= since:
                    hours.add(h)
                    conversions[v.ad_set_external_id] += c
        return {
            "attribution_window_days": self.attribution_window_days,
            "provisional_from": since.isoformat(),
            "provisional_hours": len(hours),
            "provisional_conversions": conversions,
        }

    def evidence(self, campaign: CampaignState, hour: datetime) -> CampaignEvidence:
        variants: list[VariantEvidence] = []
        priors = self.prior_provider(campaign, hour) if self.prior_provider is not None else {}
        for v in campaign.variants:
            series = campaign.hourly.get(v.variant_id)
            if series is None or not series.hour_starts:
                ages: list[float] = []
                imps: list[int] = []
                clicks: list[int] = []
                spend: list[int] = []
                convs: list[int] = []
                revenue: list[int] = []
            else:
                ages = [(hour - h).total_seconds() / HOUR_SECONDS for h in series.hour_starts]
                imps, clicks, spend = series.impressions, series.clicks, series.spend_minor
                convs, revenue = series.conversions, series.revenue_minor
            # Conversions can exceed link clicks (view-through); the Beta model needs <= clicks.
            convs = [min(c, k) for c, k in zip(convs, clicks, strict=True)]
            variants.append(
                variant_from_hourly(
                    v.ad_set_external_id,
                    ages,
                    imps,
                    clicks,
                    spend,
                    self.settings.half_life_hours,
                    convs,
                    revenue,
                    prior=None if v.variant_id in campaign.pooled else priors.get(v.variant_id),
                    active=is_active(v),
                    current_budget_minor=v.budget_minor,
                    min_budget_minor=campaign.min_budgets.get(v.ad_set_external_id, 0),
                    max_budget_minor=campaign.max_for(v.ad_set_external_id),
                )
            )
        return CampaignEvidence(
            campaign.external_id, tuple(variants), Objective(campaign.objective)
        )

    def allocate(self, campaign: CampaignState, hour: datetime) -> CampaignAllocation:
        rng = np.random.default_rng([self.seed, campaign.campaign_id, _hour_index(hour)])
        return allocate_campaign(
            self.evidence(campaign, hour), campaign.total_budget_minor, self.settings, rng
        )

    def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
        if not any(is_active(v) for v in campaign.variants):
            return Proposal({}, "thompson", {"note": "no active variant"})
        allocation = self.allocate(campaign, hour)
        provisional = self.provisional(campaign, hour)
        return Proposal(
            {v.variant_id: v.budget_minor for v in allocation.variants if v.active},
            "thompson",
            {
                **({"provisional": provisional} if provisional is not None else {}),
                "objective": allocation.objective.value,
                "half_life_hours": self.settings.half_life_hours,
                "n_draws": allocation.n_draws,
                "variants": {
                    v.variant_id: {
                        "p_best": round(v.p_best, 4),
                        "mean": v.objective_mean,
                        "interval": [v.objective_low, v.objective_high],
                        "gated": v.gated,
                    }
                    for v in allocation.variants
                },
            },
        )


def _objective_rate(v: VariantTotals, objective: str) -> tuple[float, float]:
    """(empirical value, trials) of a variant under the objective; trials drive exploration."""
    if objective == Objective.CTR:
        return safe_rate(v.clicks, v.impressions), float(v.impressions)
    if objective == Objective.CONVERSIONS_PER_DOLLAR:
        return per_dollar(v.conversions, v.spend_minor), float(v.impressions)
    if objective == Objective.REVENUE_PER_DOLLAR:
        return safe_rate(v.revenue_minor, v.spend_minor), float(v.impressions)
    return per_dollar(v.clicks, v.spend_minor), float(v.impressions)


@dataclass(frozen=True, slots=True)
class EpsilonGreedyPolicy:
    """Baseline: ``1 - epsilon`` of the budget to the empirically best variant, the rest evenly."""

    epsilon: float = 0.1
    name: str = "epsilon_greedy"

    def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
        return _winner_takes_most(campaign, self.name, self.epsilon, _greedy_index)


@dataclass(frozen=True, slots=True)
class UCB1Policy:
    """Baseline: UCB1 (Auer et al. 2002) on clicks per impression, scaled to the objective by
    each variant's observed price; the budget goes to the highest upper bound."""

    name: str = "ucb1"

    def propose(self, campaign: CampaignState, hour: datetime) -> Proposal:
        return _winner_takes_most(campaign, self.name, 0.0, _ucb1_index)


def _greedy_index(variants: Sequence[VariantTotals], objective: str) -> list[float]:
    return [_objective_rate(v, objective)[0] if v.impressions > 0 else math.inf for v in variants]


def _ucb1_index(variants: Sequence[VariantTotals], objective: str) -> list[float]:
    total = sum(v.impressions for v in variants)
    out: list[float] = []
    for v in variants:
        if v.impressions == 0 or v.spend_minor == 0:
            out.append(math.inf)
            continue
        bonus = math.sqrt(2.0 * math.log(max(total, 2)) / v.impressions)
        ctr_upper = min(1.0, safe_rate(v.clicks, v.impressions) + bonus)
        if objective == Objective.CTR:
            out.append(ctr_upper)
        else:
            out.append(ctr_upper * per_dollar(v.impressions, v.spend_minor))
    return out


def _winner_takes_most(
    campaign: CampaignState,
    name: str,
    epsilon: float,
    index: Callable[[Sequence[VariantTotals], str], list[float]],
) -> Proposal:
    active = [v for v in campaign.variants if is_active(v)]
    if not active:
        return Proposal({}, name, {"note": "no active variant"})
    scores = index(active, campaign.objective)
    top = max(scores)
    leaders = [i for i, s in enumerate(scores) if s == top]
    weights = [epsilon / len(active) for _ in active]
    for i in leaders:
        weights[i] += (1.0 - epsilon) / len(leaders)
    budgets = largest_remainder(campaign.total_budget_minor, weights)
    proposal = {v.ad_set_external_id: b for v, b in zip(active, budgets, strict=True)}
    evidence: dict[str, Any] = {
        "scores": {v.ad_set_external_id: s for v, s in zip(active, scores, strict=True)},
        "epsilon": epsilon,
    }
    return Proposal(proposal, name, evidence)
