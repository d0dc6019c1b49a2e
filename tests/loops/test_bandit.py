"""Properties of the Thompson-sampling allocator's pure core (loop 2)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adflywheel.core.domain import Objective
from adflywheel.loops.bandit import (
    AllocationSettings,
    CampaignAllocation,
    CampaignEvidence,
    RatePrior,
    VariantEvidence,
    allocate_campaign,
    allocate_many,
    discounted_totals,
    thompson_select,
    variant_from_hourly,
)

FAST = AllocationSettings(n_draws=200)
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def variant(vid: str, imps: float, clicks: float, **kw: object) -> VariantEvidence:
    return VariantEvidence(vid, imps, clicks, kw.pop("spend_minor", imps), **kw)  # type: ignore[arg-type]


@st.composite
def variant_evidence(draw: st.DrawFn, vid: str, force_active: bool) -> VariantEvidence:
    imps = draw(st.integers(0, 50_000))
    clicks = draw(st.integers(0, min(imps, 3_000)))
    conversions = draw(st.integers(0, min(clicks, 300)))
    minimum = draw(st.integers(0, 400))
    return VariantEvidence(
        id=vid,
        impressions=imps,
        clicks=clicks,
        spend_minor=draw(st.integers(0, 100_000)),
        conversions=conversions,
        revenue_minor=draw(st.integers(0, 500_000)),
        prior=draw(
            st.none()
            | st.builds(RatePrior, rate=st.floats(0.001, 0.5), strength=st.floats(1.0, 1e6))
        ),
        active=True if force_active else draw(st.booleans()),
        current_budget_minor=draw(st.none() | st.integers(0, 20_000)),
        min_budget_minor=minimum,
        max_budget_minor=draw(st.none() | st.integers(minimum, minimum + 20_000)),
    )


@st.composite
def campaign_and_total(draw: st.DrawFn) -> tuple[CampaignEvidence, int]:
    n = draw(st.integers(1, 6))
    variants = tuple(draw(variant_evidence(f"v{i}", force_active=i == 0)) for i in range(n))
    campaign = CampaignEvidence("c", variants, draw(st.sampled_from(list(Objective))))
    live = [v for v in variants if v.active]
    low = sum(v.min_budget_minor for v in live)
    if all(v.max_budget_minor is not None for v in live):
        high = sum(v.max_budget_minor or 0 for v in live)
    else:
        high = low + 60_000
    return campaign, draw(st.integers(low, high))


alloc_settings = st.builds(
    AllocationSettings,
    n_draws=st.just(200),
    floor_share=st.sampled_from([0.0, 0.05, 0.2, 0.4]),
    max_floor_total=st.sampled_from([0.0, 0.05, 0.2, 1.0]),
    min_impressions=st.sampled_from([0.0, 1000.0, 20_000.0]),
    max_gated_share=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
    max_change_fraction=st.sampled_from([None, 0.0, 0.2, 0.5, 2.0]),
    prior_tilt=st.sampled_from([0.0, 0.5, 1.0]),
)


def expected_box(
    campaign: CampaignEvidence, total: int, s: AllocationSettings
) -> tuple[dict[str, tuple[float, float]], bool, dict[str, float], bool]:
    """Independent check of the layers: cap/gate intervals and whether they are feasible, then
    floors and whether those are feasible too (only meaningful when the caps were)."""
    live = [v for v in campaign.variants if v.active]
    n = len(live)
    box: dict[str, tuple[float, float]] = {}
    pins = {
        v.id: float(v.current_budget_minor or 0) or total / n
        for v in live
        if v.gate_impressions < s.min_impressions
    }
    held = sum(pins.values())
    give = min(1.0, s.max_gated_share * total / held) if held > 0 else 1.0
    for v in live:
        low, high = float(v.min_budget_minor), float(min(v.max_budget_minor or total, total))
        cur = v.current_budget_minor or 0
        if v.id in pins and v.prior is not None and s.prior_tilt > 0:
            # Led by its prior: a fair share x (1 +- tilt), within the change cap; held where
            # the two do not meet.
            fair = total / n
            lo, hi = fair * (1 - s.prior_tilt), fair * (1 + s.prior_tilt)
            if cur > 0 and s.max_change_fraction is not None:
                lo = max(lo, cur * (1 - s.max_change_fraction))
                hi = min(hi, cur * (1 + s.max_change_fraction))
            if cur > 0 and lo > hi:
                lo = hi = float(cur)
            else:
                lo = min(lo, pins[v.id] * give)
        elif v.id in pins:
            lo, hi = pins[v.id] * give, pins[v.id]
        elif cur > 0 and s.max_change_fraction is not None:
            lo, hi = cur * (1 - s.max_change_fraction), cur * (1 + s.max_change_fraction)
        else:
            lo, hi = low, high
        lo2 = min(max(low, lo), high)
        box[v.id] = (lo2, max(min(high, hi), lo2))
    caps_ok = sum(b[0] for b in box.values()) <= total <= sum(b[1] for b in box.values())
    floor = min(min(s.floor_share, s.max_floor_total / n) * total, total / n)
    floors = {k: min(max(lo, floor), hi) for k, (lo, hi) in box.items()}
    floors_ok = sum(floors.values()) <= total
    return box, caps_ok, floors, floors_ok


@PROPS
@given(campaign_and_total(), alloc_settings, st.integers(0, 2**32 - 1))
def test_budgets_conserve_total_and_respect_every_feasible_rule(
    case: tuple[CampaignEvidence, int], s: AllocationSettings, seed: int
) -> None:
    campaign, total = case
    result = allocate_campaign(campaign, total, s, rng(seed))
    budgets = result.budgets()
    assert all(isinstance(b, int) for b in budgets.values())
    assert sum(budgets.values()) == total
    assert math.isclose(sum(v.target_share for v in result.variants), 1.0, abs_tol=1e-9)
    if total > 0:
        assert math.isclose(sum(v.share for v in result.variants), 1.0, abs_tol=1e-9)
    assert math.isclose(sum(v.p_best for v in result.variants if v.active), 1.0, abs_tol=1e-9)
    for v in campaign.variants:
        b = budgets[v.id]
        if not v.active:
            assert b == 0 and result.variant(v.id).p_best == 0.0
            continue
        assert b >= v.min_budget_minor
        if v.max_budget_minor is not None:
            assert b <= v.max_budget_minor
    box, caps_ok, floors, floors_ok = expected_box(campaign, total, s)
    if caps_ok:
        assert not result.cap_relaxed, (campaign, total, s, box)
        for vid, (lo, hi) in box.items():
            assert lo - 1 <= budgets[vid] <= hi + 1, (vid, lo, hi, budgets)
        if floors_ok:
            assert not result.floor_relaxed
            for vid, floor in floors.items():
                assert budgets[vid] >= floor - 1, (vid, floor, budgets)


@PROPS
@given(campaign_and_total(), st.integers(0, 2**32 - 1))
def test_same_seed_same_result(case: tuple[CampaignEvidence, int], seed: int) -> None:
    campaign, total = case
    assert allocate_campaign(campaign, total, FAST, rng(seed)) == allocate_campaign(
        campaign, total, FAST, rng(seed)
    )


@PROPS
@given(
    n=st.integers(2, 6),
    imps=st.integers(20_000, 200_000),
    base=st.floats(0.002, 0.02),
    lift=st.floats(2.0, 4.0),
    winner=st.integers(0, 5),
    objective=st.sampled_from([Objective.CTR, Objective.CLICKS_PER_DOLLAR]),
)
def test_dominating_variant_gets_the_most_budget(
    n: int, imps: int, base: float, lift: float, winner: int, objective: Objective
) -> None:
    winner %= n
    variants = tuple(
        variant(f"v{i}", imps, round(imps * base * (lift if i == winner else 1.0)))
        for i in range(n)
    )
    result = allocate_campaign(CampaignEvidence("c", variants, objective), 10_000, FAST, rng())
    budgets = result.budgets()
    assert max(budgets, key=budgets.__getitem__) == f"v{winner}"
    assert result.variants[winner].p_best > 0.95


@PROPS
@given(
    n=st.integers(2, 5),
    imps=st.integers(0, 100_000),
    rate=st.floats(0.001, 0.1),
    conv_rate=st.floats(0.0, 0.5),
    objective=st.sampled_from(list(Objective)),
)
def test_identical_variants_get_near_identical_shares(
    n: int, imps: int, rate: float, conv_rate: float, objective: Objective
) -> None:
    clicks = round(imps * rate)
    one = VariantEvidence("x", imps, clicks, imps * 2, round(clicks * conv_rate), clicks * 300)
    variants = tuple(replace(one, id=f"v{i}") for i in range(n))
    s = replace(FAST, n_draws=4000, min_impressions=0)
    result = allocate_campaign(CampaignEvidence("c", variants, objective), 10_000, s, rng())
    shares = [v.target_share for v in result.variants]
    assert max(shares) - min(shares) < 0.08, shares
    budgets = list(result.budgets().values())
    assert max(budgets) - min(budgets) < 800, budgets


def test_identical_variants_with_ample_draws_split_evenly() -> None:
    variants = tuple(variant(f"v{i}", 5000, 50) for i in range(4))
    s = AllocationSettings(n_draws=20_000, min_impressions=0)
    budgets = allocate_campaign(CampaignEvidence("c", variants), 10_000, s, rng()).budgets()
    assert all(abs(b - 2500) < 150 for b in budgets.values()), budgets


def test_no_clicks_anywhere_still_splits_evenly() -> None:
    # Pseudo-counts far below 1 make Gamma draws underflow to 0; ties must not favour the first.
    variants = tuple(variant(f"v{i}", 1_000_000, 0) for i in range(3))
    for objective in (Objective.CTR, Objective.CONVERSIONS_PER_DOLLAR):
        result = allocate_campaign(
            CampaignEvidence("c", variants, objective), 3000, replace(FAST, n_draws=6000), rng()
        )
        assert all(abs(v.p_best - 1 / 3) < 0.04 for v in result.variants), result


def test_inactive_variant_gets_zero_and_is_never_selected() -> None:
    variants = (
        variant("paused", 50_000, 5_000, active=False, min_budget_minor=300),
        variant("a", 50_000, 500),
        variant("b", 50_000, 400),
    )
    campaign = CampaignEvidence("c", variants)
    result = allocate_campaign(campaign, 1000, FAST, rng())
    assert result.variant("paused").budget_minor == 0
    assert result.variant("paused").share == 0.0
    picks = {thompson_select(campaign, FAST, rng(seed)) for seed in range(200)}
    assert picks <= {"a", "b"} and "a" in picks


def test_thompson_select_follows_the_posterior_and_is_seeded() -> None:
    campaign = CampaignEvidence("c", (variant("a", 10_000, 100), variant("b", 10_000, 130)))
    picks = [thompson_select(campaign, FAST, rng(seed)) for seed in range(300)]
    assert picks == [thompson_select(campaign, FAST, rng(seed)) for seed in range(300)]
    share_b = picks.count("b") / len(picks)
    p_best_b = allocate_campaign(campaign, 100, AllocationSettings(n_draws=20_000), rng()).variant(
        "b"
    )
    assert abs(share_b - p_best_b.p_best) < 0.1


def test_prior_steers_a_new_variant_then_gives_way_to_data() -> None:
    s = replace(FAST, min_impressions=0, n_draws=2000)
    fresh = (
        variant("predicted", 0, 0, prior=RatePrior(0.05, 1000)),
        variant("plain", 0, 0),
    )
    result = allocate_campaign(CampaignEvidence("c", fresh), 10_000, s, rng())
    assert result.variant("predicted").p_best > 0.9
    assert result.variant("predicted").budget_minor > result.variant("plain").budget_minor
    assert 0.04 < result.variant("predicted").ctr_mean < 0.06

    # A huge claimed strength is capped, and 100k impressions of real data overwhelm it.
    seasoned = (
        variant("predicted", 100_000, 500, prior=RatePrior(0.05, 1e9)),
        variant("plain", 100_000, 1_000),
    )
    result = allocate_campaign(CampaignEvidence("c", seasoned), 10_000, s, rng())
    assert result.variant("plain").p_best > 0.99
    assert result.variant("predicted").ctr_mean < 0.007


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize(
    ("rate", "strength"), [(0.9999999999999999, 5e-324), (0.5, 5e-324), (1e-300, 1e-10)]
)
def test_a_prior_too_weak_to_register_leaves_every_figure_finite(
    rate: float, strength: float
) -> None:
    """Regression (issue #17, found by Schemathesis through /budget/allocate): pseudo-counts that
    underflow to a denormal or 0 gave NaN draws, means and intervals (``null`` in the answer)."""
    s = replace(FAST, min_impressions=0)
    weak = (variant("weak", 0, 0, prior=RatePrior(rate, strength)), variant("plain", 0, 0))
    for objective in Objective:
        result = allocate_campaign(CampaignEvidence("c", weak, objective), 1_000, s, rng())
        for v in result.variants:
            figures = (v.p_best, v.objective_mean, v.objective_low, v.objective_high)
            figures += (v.ctr_mean, v.ctr_low, v.ctr_high)
            assert all(math.isfinite(x) for x in figures), (objective, v)
        assert sum(v.budget_minor for v in result.variants) == 1_000


def test_gated_variant_keeps_current_budget_or_gets_fair_share() -> None:
    s = replace(FAST, min_impressions=1000, max_change_fraction=None, floor_share=0.0)
    variants = (
        variant("young", 10, 0, current_budget_minor=2000),
        variant("new", 0, 0),
        variant("strong", 50_000, 2_500, current_budget_minor=4000),
        variant("weak", 50_000, 500, current_budget_minor=3000),
    )
    result = allocate_campaign(CampaignEvidence("c", variants), 12_000, s, rng())
    b = result.budgets()
    assert b["young"] == 2000 and b["new"] == 3000
    assert result.variant("young").gated and not result.variant("strong").gated
    assert b["strong"] > 6000 and b["strong"] + b["weak"] == 7000


def test_change_cap_limits_each_move_and_relaxes_only_when_the_total_jumps() -> None:
    s = replace(FAST, max_change_fraction=0.5, min_impressions=0)
    variants = (
        variant("good", 50_000, 2_500, current_budget_minor=1000),
        variant("bad", 50_000, 100, current_budget_minor=1000),
    )
    campaign = CampaignEvidence("c", variants)
    result = allocate_campaign(campaign, 2000, s, rng())
    assert result.budgets() == {"good": 1500, "bad": 500} and not result.cap_relaxed
    tripled = allocate_campaign(campaign, 6000, s, rng())
    assert sum(tripled.budgets().values()) == 6000 and tripled.cap_relaxed


def test_discounting_with_short_half_life_follows_a_collapse() -> None:
    ages = np.arange(240) + 0.5
    imps = np.full(240, 1000)
    collapsed = np.where(ages < 24, 1, 30)  # 3% CTR for nine days, 0.1% in the last day
    steady = np.full(240, 15)  # 1.5% throughout

    def campaign(half_life: float | None) -> CampaignEvidence:
        return CampaignEvidence(
            "c",
            (
                variant_from_hourly("collapsed", ages, imps, collapsed, imps, half_life),
                variant_from_hourly("steady", ages, imps, steady, imps, half_life),
            ),
        )

    fresh = allocate_campaign(campaign(6.0), 10_000, FAST, rng())
    stale = allocate_campaign(campaign(None), 10_000, FAST, rng())
    assert fresh.variant("steady").p_best > 0.95
    assert stale.variant("collapsed").p_best > 0.95
    assert not fresh.variant("collapsed").gated  # the gate counts raw impressions


def test_discounted_totals() -> None:
    counts = np.array([[10.0, 10.0, 10.0], [1.0, 2.0, 3.0]])
    ages = [0.0, 4.0, 8.0]
    assert discounted_totals(counts, ages, None).tolist() == [30.0, 6.0]
    assert discounted_totals(counts, ages, math.inf).tolist() == [30.0, 6.0]
    assert np.allclose(discounted_totals(counts, ages, 4.0), [17.5, 1 + 1 + 0.75])
    with pytest.raises(ValueError, match="ages_hours"):
        discounted_totals(counts, [0.0, -1.0, 2.0], 4.0)
    with pytest.raises(ValueError, match="half_life_hours"):
        discounted_totals(counts, ages, 0.0)
    with pytest.raises(ValueError, match="must match"):
        discounted_totals(counts, [0.0, 1.0], 4.0)
    with pytest.raises(ValueError, match="non-negative"):
        discounted_totals([[-1.0, 0.0, 0.0]], ages, 4.0)


def test_variant_from_hourly_rejects_impossible_hours() -> None:
    ages = [0.5, 1.5]
    with pytest.raises(ValueError, match="hourly clicks exceed hourly impressions"):
        variant_from_hourly("a", ages, [10, 10], [11, 0], [5, 5], 6.0)
    with pytest.raises(ValueError, match="hourly conversions exceed hourly clicks"):
        variant_from_hourly("a", ages, [10, 10], [1, 0], [5, 5], 6.0, conversions=[0, 1])
    v = variant_from_hourly("a", ages, [10, 10], [10, 10], [5, 5], 1.0, conversions=[10, 10])
    assert v.clicks == v.impressions == v.conversions == pytest.approx(10 * 2**-0.5 + 10 * 2**-1.5)
    assert v.evidence_impressions == 20


def test_allocate_many_keeps_order_and_mixes_objectives() -> None:
    campaigns = [
        CampaignEvidence(f"c{i}", (variant("a", 9000, 90 + i), variant("b", 9000, 100)), obj)
        for i, obj in enumerate([*Objective, Objective.CTR])
    ]
    results = allocate_many(campaigns, [1000 + i for i in range(5)], FAST, rng(7))
    assert [r.campaign_id for r in results] == [c.id for c in campaigns]
    assert [r.objective for r in results] == [c.objective for c in campaigns]
    assert all(isinstance(r, CampaignAllocation) for r in results)
    assert [sum(r.budgets().values()) for r in results] == [1000 + i for i in range(5)]
    assert results == allocate_many(campaigns, [1000 + i for i in range(5)], FAST, rng(7))


def test_objective_summaries_are_in_natural_units() -> None:
    v = VariantEvidence("a", 100_000, 1_000, 200_000, 50, 250_000)  # $2000, 50 conv, $2500 rev
    results = {
        obj: allocate_campaign(CampaignEvidence("c", (v,), obj), 100, FAST, rng()).variants[0]
        for obj in Objective
    }
    assert results[Objective.CTR].objective_mean == pytest.approx(0.01, rel=0.02)
    assert results[Objective.CLICKS_PER_DOLLAR].objective_mean == pytest.approx(0.5, rel=0.02)
    assert results[Objective.CONVERSIONS_PER_DOLLAR].objective_mean == pytest.approx(
        0.025, rel=0.02
    )
    assert results[Objective.REVENUE_PER_DOLLAR].objective_mean == pytest.approx(1.25, rel=0.02)
    for r in results.values():
        assert r.objective_low < r.objective_mean < r.objective_high
        assert r.ctr_low < r.ctr_mean < r.ctr_high


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: variant("a", -1, 0), "impressions is negative"),
        (lambda: variant("a", 10, -1), "clicks is negative"),
        (lambda: VariantEvidence("a", 10, 1, -5), "spend_minor is negative"),
        (lambda: VariantEvidence("a", 10, 1, 5, conversions=-1), "conversions is negative"),
        (lambda: variant("a", 10, 11), r"clicks \(11\) exceed impressions \(10\)"),
        (lambda: VariantEvidence("a", 10, 1, 5, conversions=2), r"conversions \(2\) exceed"),
        (lambda: variant("a", math.nan, 0), "impressions must be finite"),
        (lambda: variant("a", 10, 1, current_budget_minor=10.5), "current_budget_minor must be"),
        (lambda: variant("a", 10, 1, min_budget_minor=1.0), "min_budget_minor must be an int"),
        (lambda: variant("a", 10, 1, max_budget_minor="9"), "max_budget_minor must be an int"),
        (lambda: variant("a", 10, 1, min_budget_minor=9, max_budget_minor=5), "is below"),
        (lambda: variant("", 10, 1), "variant id"),
        (lambda: CampaignEvidence("c", ()), "variant list is empty"),
        (
            lambda: CampaignEvidence("c", (variant("a", 1, 0), variant("a", 2, 0))),
            r"duplicate variant ids \['a'\]",
        ),
        (lambda: CampaignEvidence("c", (variant("a", 1, 0),), "cpm"), "unknown objective"),
        (lambda: RatePrior(1.5, 100), "prior rate"),
        (lambda: RatePrior(0.1, 0), "prior strength"),
        (lambda: AllocationSettings(n_draws=0), "n_draws"),
        (lambda: AllocationSettings(floor_share=1.0), "floor_share"),
        (lambda: AllocationSettings(max_change_fraction=-0.1), "max_change_fraction"),
        (lambda: AllocationSettings(max_floor_total=1.5), "max_floor_total"),
        (lambda: AllocationSettings(max_gated_share=-0.1), "max_gated_share"),
    ],
)
def test_bad_evidence_is_rejected_with_a_message(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_bad_budget_requests_are_rejected_with_a_message() -> None:
    one = CampaignEvidence("c", (variant("a", 10, 1, min_budget_minor=600), variant("b", 10, 1)))
    with pytest.raises(ValueError, match=r"total budget 500 is below .* minimum budgets \(600\)"):
        allocate_campaign(one, 500, FAST, rng())
    with pytest.raises(ValueError, match="total budget must be an integer"):
        allocate_campaign(one, 1000.0, FAST, rng())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="total budget is negative"):
        allocate_campaign(one, -1, FAST, rng())
    capped = CampaignEvidence("c", (variant("a", 10, 1, max_budget_minor=100),))
    with pytest.raises(ValueError, match=r"above the sum .* maximum budgets \(100\)"):
        allocate_campaign(capped, 101, FAST, rng())
    paused = CampaignEvidence("c", (variant("a", 10, 1, active=False),))
    with pytest.raises(ValueError, match="no active variant"):
        allocate_campaign(paused, 100, FAST, rng())
    with pytest.raises(ValueError, match="no active variant"):
        thompson_select(paused, FAST, rng())
    idle = allocate_campaign(paused, 0, FAST, rng())
    assert idle.budgets() == {"a": 0} and idle.variants[0].p_best == 0.0
    with pytest.raises(ValueError, match=r"duplicate campaign ids \['c'\]"):
        allocate_many([one, one], [1000, 1000], FAST, rng())
    with pytest.raises(ValueError, match="one per campaign"):
        allocate_many([one], [1000, 1000], FAST, rng())
