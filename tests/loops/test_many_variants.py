"""Allocation at any number of variants (issue #15, item 4): floors and the evidence gate bounded
in total, so Thompson still concentrates on the best at 80 or 200 variants."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from benchmarks.bench_many_variants import LEGACY, simulate

from adflywheel.loops.bandit import (
    AllocationSettings,
    CampaignEvidence,
    RatePrior,
    VariantEvidence,
    allocate_campaign,
    allocate_many,
)
from adflywheel.loops.bandit.budget import variant_floor
from adflywheel.services.bandit.policies import THOMPSON_SETTINGS

FAST = replace(THOMPSON_SETTINGS, n_draws=400)
TOTAL = 1_000_000


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def catalogue(
    n: int, imps: float, best_rate: float = 0.02, rest: float = 0.004, **kw: object
) -> CampaignEvidence:
    """One clearly best variant (``v0``) and ``n - 1`` alike, each with ``imps`` impressions."""
    variants = tuple(
        VariantEvidence(
            f"v{i}",
            imps,
            round(imps * (best_rate if i == 0 else rest)),
            imps,
            **kw,  # type: ignore[arg-type]
        )
        for i in range(n)
    )
    return CampaignEvidence("c", variants)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 11, 50, 200, 1000])
@pytest.mark.parametrize("bound", [0.05, 0.2])
def test_floors_together_never_take_more_than_the_bound(n: int, bound: float) -> None:
    floor = float(variant_floor(np.array([[float(n)]]), 0.02, bound)[0, 0])
    assert n * floor <= bound + 1e-12
    if n * 0.02 <= bound:  # a 2% floor is unchanged while the floors fit under the bound
        assert floor == 0.02


def test_floors_at_200_variants_take_at_most_the_bounded_share() -> None:
    s = replace(FAST, min_impressions=0, max_change_fraction=None)
    result = allocate_campaign(catalogue(200, 50_000), TOTAL, s, rng())
    budgets = result.budgets()
    assert sum(budgets.values()) == TOTAL
    floor = min(s.floor_share, s.max_floor_total / 200) * TOTAL
    tail = [b for vid, b in budgets.items() if vid != "v0"]
    assert min(tail) >= floor - 1
    assert sum(tail) <= s.max_floor_total * TOTAL + 200  # the floors, and a rounding unit each
    assert budgets["v0"] >= (1 - s.max_floor_total) * TOTAL - 200


def test_clear_evidence_at_200_variants_concentrates_where_the_legacy_rules_were_uniform() -> None:
    s = replace(FAST, max_change_fraction=None)
    campaign = catalogue(200, 50_000)
    best = allocate_campaign(campaign, TOTAL, s, rng()).variant("v0").share
    assert best > 0.5  # against 1/n = 0.005
    legacy = allocate_campaign(campaign, TOTAL, replace(LEGACY, n_draws=400), rng())
    assert {v.budget_minor for v in legacy.variants} == {TOTAL // 200}  # floors took it all


def test_under_the_change_cap_the_best_climbs_in_log_n_steps() -> None:
    campaign = catalogue(200, 50_000)
    current = [TOTAL // 200] * 200
    for hour in range(16):  # 1.5x an hour: 0.5% -> 50% takes about 11 steps
        variants = tuple(
            replace(v, current_budget_minor=c)
            for v, c in zip(campaign.variants, current, strict=True)
        )
        result = allocate_campaign(CampaignEvidence("c", variants), TOTAL, FAST, rng(hour))
        current = [v.budget_minor for v in result.variants]
        assert sum(current) == TOTAL
    assert current[0] > 0.5 * TOTAL


def test_the_gate_does_not_freeze_a_big_campaign_at_its_fair_share() -> None:
    # One proven variant and 199 young ones held at total / n, predicted mediocre: the young are
    # never raised, but they give up budget until they hold max_gated_share of it together.
    # (Without the prior, 199 wide posteriors rightly make one of them likely the best.)
    proven = VariantEvidence("proven", 200_000, 4_000, 200_000, current_budget_minor=TOTAL // 200)
    young = tuple(
        VariantEvidence(
            f"y{i}", 200, 1, 200, prior=RatePrior(0.005, 2000), current_budget_minor=TOTAL // 200
        )
        for i in range(199)
    )
    campaign = CampaignEvidence("c", (proven, *young))
    s = replace(FAST, max_change_fraction=None, prior_tilt=0.0)  # the gate alone, no prior lead
    result = allocate_campaign(campaign, TOTAL, s, rng())
    budgets = result.budgets()
    assert sum(budgets.values()) == TOTAL
    assert all(result.variant(f"y{i}").gated for i in range(199))
    assert all(budgets[f"y{i}"] <= TOTAL // 200 for i in range(199))  # never raised
    assert sum(budgets[f"y{i}"] for i in range(199)) >= s.max_gated_share * TOTAL - 199
    assert budgets["proven"] >= 0.45 * TOTAL
    legacy = allocate_campaign(campaign, TOTAL, replace(s, max_gated_share=1.0), rng())
    assert legacy.budgets()["proven"] == TOTAL // 200
    # Led by their (mediocre) prior, the young give up more, but never below (1 - tilt) x fair.
    led = allocate_campaign(campaign, TOTAL, replace(s, prior_tilt=0.5), rng()).budgets()
    assert sum(led[f"y{i}"] for i in range(199)) < sum(budgets[f"y{i}"] for i in range(199))
    assert all(TOTAL // 400 - 1 <= led[f"y{i}"] <= TOTAL // 200 for i in range(199))


@pytest.mark.parametrize(("n", "max_floor_total"), [(2, 0.05), (5, 0.1), (5, 0.2), (10, 0.2)])
def test_small_campaigns_are_unchanged(n: int, max_floor_total: float) -> None:
    """While a 2% floor fits under the bound (the service's 5%: 2 variants; the core's default
    20%: 10) and the gate holds at most half the budget, the new bounds do not bind: the same
    budgets as the allocator before issue #15, draw for draw."""
    gen = rng(n)
    variants = tuple(
        VariantEvidence(
            f"v{i}",
            float(imps),
            float(gen.binomial(imps, gen.uniform(0.002, 0.02))),
            float(imps),
            current_budget_minor=int(gen.integers(1_000, 50_000)),
        )
        for i, imps in enumerate(gen.integers(0, 40_000, size=n))
    )
    gated_held = sum(v.current_budget_minor or 0 for v in variants if v.impressions < 1000)
    total = max(sum(v.current_budget_minor or 0 for v in variants), 2 * gated_held)
    campaign = CampaignEvidence("c", variants)
    s = replace(FAST, max_floor_total=max_floor_total)
    assert allocate_campaign(campaign, total, s, rng()) == allocate_campaign(
        campaign, total, replace(LEGACY, n_draws=400), rng()
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("pause", [False, True])
def test_conservation_is_exact_at_hundreds_of_variants(seed: int, pause: bool) -> None:
    gen = rng(seed)
    campaigns, totals = [], []
    minimum_of: dict[str, list[int]] = {}
    for c in range(4):
        n = int(gen.integers(50, 300))
        imps = gen.integers(0, 30_000, size=n)
        minimum = gen.integers(0, 50, size=n) * (1 + 200 * pause)
        variants = tuple(
            VariantEvidence(
                f"v{i}",
                float(imps[i]),
                float(gen.binomial(imps[i], 0.005)),
                float(imps[i]),
                active=bool(gen.random() > 0.1) or i == 0,
                current_budget_minor=int(gen.integers(0, 20_000)) or None,
                min_budget_minor=int(minimum[i]),
            )
            for i in range(n)
        )
        campaigns.append(CampaignEvidence(f"c{c}", variants))
        minimum_of[f"c{c}"] = [v.min_budget_minor for v in variants if v.active]
        # with pausing, the total is a third to all of the minimums' sum (up to 50 × 201 each)
        low, high = (sum(minimum) // 3, sum(minimum)) if pause else (sum(minimum), 3_000_000)
        totals.append(int(gen.integers(low + 1, high + 1)))
    s = replace(FAST, pause_tail_below_minimum=pause)
    for result, total, campaign in zip(
        allocate_many(campaigns, totals, s, rng(seed)), totals, campaigns, strict=True
    ):
        budgets = result.budgets()
        assert sum(budgets.values()) == total
        assert bool(result.paused) == (pause and sum(minimum_of[campaign.id]) > total)
        for v in campaign.variants:
            running = v.active and v.id not in result.paused
            assert budgets[v.id] >= (v.min_budget_minor if running else 0)
            assert running or budgets[v.id] == 0


@pytest.mark.slow  # ~5 s: 48 reallocations of 2 × 80 variants and the reference's draws
def test_short_benchmark_80_variants_near_the_reference_and_above_uniform() -> None:
    seeds, hours = (0, 1), 48
    reference = simulate("reference", 80, seeds, hours)
    ours = simulate("allocator", 80, seeds, hours, THOMPSON_SETTINGS)
    uniform = simulate("uniform", 80, seeds, hours)
    assert ours.sum() >= 0.93 * reference.sum()
    assert ours.sum() > uniform.sum()


def test_settings_default_bounds() -> None:
    core = AllocationSettings()
    assert (core.max_floor_total, core.max_gated_share) == (0.2, 0.5)
    assert THOMPSON_SETTINGS.max_floor_total == 0.05


def test_a_tail_that_does_not_fit_meta_minimums_is_paused_and_named() -> None:
    # 10 ad sets with a minimum daily budget of 1,000 under a total of 5,500: five can run.
    rates = [0.010, 0.002, 0.009, 0.003, 0.008, 0.001, 0.007, 0.004, 0.006, 0.005]
    variants = tuple(
        VariantEvidence(f"v{i}", 100_000, round(100_000 * r), 100_000, min_budget_minor=1_000)
        for i, r in enumerate(rates)
    )
    campaign = CampaignEvidence("c", variants)
    with pytest.raises(ValueError, match="below the sum of the active variants' minimum"):
        allocate_campaign(campaign, 5_500, FAST, rng())
    s = replace(FAST, pause_tail_below_minimum=True)
    result = allocate_campaign(campaign, 5_500, s, rng())
    budgets = result.budgets()
    assert sum(budgets.values()) == 5_500
    assert set(result.paused) == {"v1", "v3", "v5", "v7", "v9"}  # the five worst
    assert all(budgets[v] == 0 and not result.variant(v).active for v in result.paused)
    running = [v for v in budgets if v not in result.paused]
    assert all(budgets[v] >= 1_000 for v in running)
    assert set(result.held_at_minimum) == set(running) - {"v0"}  # the best takes the rest
    assert budgets["v0"] == 1_500
    fits = allocate_campaign(campaign, 20_000, s, rng())  # everything fits: nothing paused
    assert fits.paused == () and sum(fits.budgets().values()) == 20_000
    assert set(fits.held_at_minimum) == {f"v{i}" for i in range(1, 10)}
