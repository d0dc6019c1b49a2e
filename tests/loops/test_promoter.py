"""The auto-promoter's pure core against independent references (scipy, numerical integration,
brute force, simulation), and every guardrail rule of the planner."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.stats.contingency import relative_risk

from adflywheel.loops.promoter import (
    POOLED,
    Candidate,
    Correction,
    Decision,
    DecisionSettings,
    Experiment,
    Guardrails,
    Hold,
    Mode,
    PastAction,
    Reason,
    VariantData,
    always_valid_p_value,
    benjamini_hochberg,
    cs_half_width,
    decide,
    fixed_z_test,
    holm,
    log_e_value,
    mh_log_ratio,
    mh_log_ratio_path,
    plan_promotions,
    sample_ratio_check,
)
from adflywheel.loops.promoter.corrections import FloatArray

NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)

# -- the estimate ------------------------------------------------------------------------------


def test_one_period_matches_scipy_relative_risk_and_its_interval() -> None:
    est = mh_log_ratio([12_000], [300], [11_000], [220])
    reference = relative_risk(300, 12_000, 220, 11_000)
    assert math.exp(float(est.log_ratio)) == pytest.approx(reference.relative_risk, rel=1e-12)
    z = stats.norm.ppf(0.975)
    half = z * math.sqrt(float(est.variance))
    ci = reference.confidence_interval(0.95)
    assert math.exp(float(est.log_ratio) - half) == pytest.approx(ci.low, rel=1e-9)
    assert math.exp(float(est.log_ratio) + half) == pytest.approx(ci.high, rel=1e-9)


def _textbook_mh(strata: list[tuple[int, int, int, int]]) -> tuple[float, float]:
    """Mantel–Haenszel RR and the Greenland–Robins (1985) variance of its log, written out
    stratum by stratum (Rothman, Modern Epidemiology, ch. 15)."""
    r = s = p = 0.0
    for a, n1, b, n0 in strata:
        t = n1 + n0
        r += a * n0 / t
        s += b * n1 / t
        p += ((a + b) * n1 * n0 - a * b * t) / t**2
    return math.log(r / s), p / (r * s)


def test_stratified_estimate_matches_the_textbook_formulas() -> None:
    strata = [(30, 1500, 12, 500), (8, 400, 40, 1600), (25, 1000, 22, 1000), (0, 50, 3, 100)]
    a, n1, b, n0 = (list(col) for col in zip(*strata, strict=True))
    est = mh_log_ratio(n1, a, n0, b)
    log_rr, var = _textbook_mh(strata)
    assert float(est.log_ratio) == pytest.approx(log_rr, rel=1e-12)
    assert float(est.variance) == pytest.approx(var, rel=1e-12)


def test_stratifying_by_period_removes_the_simpsons_paradox_bias_of_pooling() -> None:
    # Identical variants. CTR is 4% in the first period and 1% in the second; the split moves
    # from 80/20 to 20/80, so pooled counts make the variant look ~2x better than it is.
    nv, nc = [8000, 2000], [2000, 8000]
    xv, xc = [320, 20], [80, 80]
    pooled = mh_log_ratio([sum(nv)], [sum(xv)], [sum(nc)], [sum(xc)])
    stratified = mh_log_ratio(nv, xv, nc, xc)
    assert math.exp(float(pooled.log_ratio)) > 2.0
    assert float(stratified.log_ratio) == pytest.approx(0.0, abs=1e-12)


def test_the_path_is_the_estimate_after_each_period() -> None:
    rng = np.random.default_rng(3)
    nv, nc = rng.integers(0, 900, 12), rng.integers(0, 900, 12)
    xv, xc = rng.binomial(nv, 0.03), rng.binomial(nc, 0.02)
    path = mh_log_ratio_path(nv, xv, nc, xc)
    for k in range(12):
        prefix = mh_log_ratio(nv[: k + 1], xv[: k + 1], nc[: k + 1], xc[: k + 1])
        np.testing.assert_allclose(path.log_ratio[k], prefix.log_ratio, rtol=1e-12)
        np.testing.assert_allclose(path.variance[k], prefix.variance, rtol=1e-12)


def test_an_arm_without_clicks_is_not_estimable() -> None:
    est = mh_log_ratio([1000], [0], [1000], [20])
    assert math.isnan(float(est.log_ratio))
    assert float(log_e_value(est.log_ratio, est.variance, 0.2)) == 0.0
    assert float(always_valid_p_value(est.log_ratio, est.variance, 0.2)) == 1.0


# -- the always-valid test ---------------------------------------------------------------------


@pytest.mark.parametrize(("est", "var", "tau"), [(0.1, 0.004, 0.18), (-0.3, 0.02, 0.1), (0, 1, 1)])
def test_the_mixture_likelihood_ratio_matches_numerical_integration(
    est: float, var: float, tau: float
) -> None:
    def integrand(theta: float) -> float:
        ratio = math.exp((theta * est - theta**2 / 2) / var)
        return ratio * float(stats.norm.pdf(theta, 0, tau))

    reference, _ = integrate.quad(integrand, -20 * tau, 20 * tau, points=[0.0, est])
    assert math.exp(float(log_e_value(est, var, tau))) == pytest.approx(reference, rel=1e-7)


def test_the_mixture_ratio_is_johari_et_als_two_sample_closed_form() -> None:
    """Johari, Koomen, Pekelis & Walsh (2022), normal mSPRT for two arms of n observations of
    known variance sigma^2, in the paper's own parameterisation, computed here from raw draws:
    Lambda_n = sqrt(2s2 / (2s2 + n tau2)) exp(n^2 tau2 (Ybar - Xbar)^2 / (4 s2 (2s2 + n tau2)))."""
    rng = np.random.default_rng(8)
    sigma, tau = 1.3, 0.25
    for n, shift in ((50, 0.0), (400, 0.2), (3000, 0.1)):
        x, y = rng.normal(0.0, sigma, n), rng.normal(shift, sigma, n)
        d, s2, t2 = float(y.mean() - x.mean()), sigma**2, tau**2
        paper = 0.5 * math.log(2 * s2 / (2 * s2 + n * t2)) + n**2 * t2 * d**2 / (
            4 * s2 * (2 * s2 + n * t2)
        )
        assert float(log_e_value(d, 2 * s2 / n, tau)) == pytest.approx(paper, rel=1e-12, abs=1e-14)


def test_the_greenland_robins_variance_holds_over_many_sparse_periods() -> None:
    """An independent check of the Mantel–Haenszel estimate (scipy has no stratified rate
    ratio): simulate 2000 experiments of 300 hourly periods with a couple of clicks each and a
    base CTR that moves; the estimate centres on the true ratio and its stated variance is the
    spread seen across experiments (synthetic data)."""
    rng = np.random.default_rng(21)
    periods, runs, ratio = 300, 2000, 1.5
    base = rng.uniform(0.004, 0.02, periods)
    nv, nc = rng.integers(100, 300, periods), rng.integers(100, 300, periods)
    xv = rng.binomial(nv, base * ratio, (runs, periods))
    xc = rng.binomial(nc, base, (runs, periods))
    est = mh_log_ratio(np.broadcast_to(nv, xv.shape), xv, np.broadcast_to(nc, xc.shape), xc)
    assert float(np.mean(est.log_ratio)) == pytest.approx(math.log(ratio), abs=0.01)
    assert float(np.var(est.log_ratio)) / float(np.mean(est.variance)) == pytest.approx(1, abs=0.1)


def test_the_confidence_sequence_is_the_set_the_test_does_not_reject() -> None:
    est, var, tau, alpha = 0.25, 0.01, 0.18, 0.05
    half = float(cs_half_width(var, tau, alpha))
    for edge in (est - half, est + half):  # testing theta = edge: Lambda is exactly 1/alpha
        assert math.exp(float(log_e_value(est - edge, var, tau))) == pytest.approx(1 / alpha)
    assert half > stats.norm.ppf(1 - alpha / 2) * math.sqrt(var)  # wider than fixed-sample


def test_always_valid_p_values_are_never_below_the_fixed_sample_ones() -> None:
    rng = np.random.default_rng(0)
    est, var = rng.normal(0, 0.2, 5000), rng.uniform(1e-4, 0.1, 5000)
    fixed = 2 * stats.norm.sf(np.abs(est) / np.sqrt(var))
    assert np.all(always_valid_p_value(est, var, 0.18) >= fixed - 1e-12)


def test_the_naive_z_test_matches_scipys_chi_square_without_correction() -> None:
    z, p = fixed_z_test([10_000], [240], [10_000], [200])
    chi2, p_ref, _, _ = stats.chi2_contingency([[240, 9760], [200, 9800]], correction=False)
    assert float(z[0]) ** 2 == pytest.approx(chi2, rel=1e-9)
    assert float(p[0]) == pytest.approx(p_ref, rel=1e-9)


def _hourly_paths(
    rng: np.random.Generator, reps: int, hours: int, per_hour: int, ctr: float, lift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = per_hour * np.arange(1, hours + 1, dtype=np.float64) * np.ones((reps, 1))
    control = rng.binomial(per_hour, ctr, (reps, hours)).cumsum(1)
    variant = rng.binomial(per_hour, ctr * (1 + lift), (reps, hours)).cumsum(1)
    return n, variant.astype(np.float64), control.astype(np.float64)


def test_hourly_looks_at_identical_variants_keep_the_error_rate_unlike_the_naive_test() -> None:
    rng = np.random.default_rng(7)
    n, variant, control = _hourly_paths(rng, 400, 168, 500, 0.02, 0.0)
    est = mh_log_ratio(n[..., None], variant[..., None], n[..., None], control[..., None])
    p = always_valid_p_value(est.log_ratio, est.variance, math.log(1.2))
    always_valid = float((p <= 0.05).any(axis=1).mean())
    _, naive_p = fixed_z_test(n, variant, n, control)
    naive = float((naive_p <= 0.05).any(axis=1).mean())
    # 400 reps: 0.05 + 3 binomial standard errors; the naive rate is around 40% at 168 looks.
    assert always_valid <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 400)
    assert naive >= 0.25


def test_a_true_lift_of_fifty_percent_is_found_within_days() -> None:
    rng = np.random.default_rng(8)
    n, variant, control = _hourly_paths(rng, 200, 168, 500, 0.02, 0.5)
    est = mh_log_ratio(n[..., None], variant[..., None], n[..., None], control[..., None])
    p = always_valid_p_value(est.log_ratio, est.variance, math.log(1.2))
    assert float(((p <= 0.05) & (est.log_ratio > 0)).any(axis=1).mean()) >= 0.95


# -- corrections -------------------------------------------------------------------------------


def _closed_testing_bonferroni(p: list[float], alpha: float) -> set[int]:
    """Holm by its definition: reject H_i iff every intersection containing i is rejected by
    Bonferroni (Marcus, Peritz & Gabriel 1976)."""
    m = len(p)
    rejected = set()
    for i in range(m):
        subsets = (
            s for k in range(1, m + 1) for s in itertools.combinations(range(m), k) if i in s
        )
        if all(min(p[j] for j in s) <= alpha / len(s) for s in subsets):
            rejected.add(i)
    return rejected


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=7), st.sampled_from([0.01, 0.05, 0.1]))
@settings(max_examples=150, deadline=None)
def test_holm_equals_closed_testing_with_bonferroni(p: list[float], alpha: float) -> None:
    adjusted = holm(p)
    assert {i for i, a in enumerate(adjusted) if a <= alpha} == _closed_testing_bonferroni(p, alpha)


def _step_up_bh(p: FloatArray) -> FloatArray:
    """The hand-written Benjamini–Hochberg step-up that scipy's replaced (issue #20), over the
    last axis: sort, scale by m/rank, running minimum from the largest, cap at 1, unsort."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    scaled = ranked * m / np.arange(1, m + 1, dtype=np.float64)
    stepped = np.minimum(np.flip(np.minimum.accumulate(np.flip(scaled, -1), axis=-1), -1), 1.0)
    out = np.empty_like(p)
    np.put_along_axis(out, order, stepped, axis=-1)
    return out


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
@settings(max_examples=150, deadline=None)
def test_benjamini_hochberg_gives_the_q_values_of_the_step_up_it_replaced(p: list[float]) -> None:
    assert np.allclose(benjamini_hochberg(p), _step_up_bh(np.array(p)), rtol=1e-12, atol=1e-15)


def test_benjamini_hochberg_over_the_last_axis_with_ties() -> None:
    rng = np.random.default_rng(11)
    p = np.round(rng.uniform(0, 0.2, (50, 6)), 2)  # rounded: many ties
    np.testing.assert_allclose(benjamini_hochberg(p), _step_up_bh(p), rtol=1e-12, atol=1e-15)
    assert benjamini_hochberg(np.zeros((3, 0))).shape == (3, 0)
    # A textbook case, by hand: m = 4, p = .01 .02 .03 .5 -> q = .04 .04 .04 .5.
    np.testing.assert_allclose(benjamini_hochberg([0.02, 0.5, 0.01, 0.03]), [0.04, 0.5, 0.04, 0.04])


# -- sample-ratio mismatch ---------------------------------------------------------------------


def test_srm_reports_scipys_chi_square_and_is_more_conservative() -> None:
    result = sample_ratio_check([5300], [4700], [0.5], alpha=0.001, tolerance=0.2)
    reference = stats.chisquare([5300, 4700], [5000, 5000])
    assert result.chi2_p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert result.p_value >= result.chi2_p_value
    assert not result.mismatch  # 6% off: certain, but within the 20% an auction can explain


def test_srm_flags_a_starved_arm_across_periods_with_changing_shares() -> None:
    intended = [0.5, 0.7, 0.3]
    fine = sample_ratio_check([5000, 7000, 3000], [5000, 3000, 7000], intended)
    starved = sample_ratio_check([1000, 2000, 500], [5000, 3000, 7000], intended)
    assert fine.checked and not fine.mismatch and abs(fine.deviation) < 1e-12
    assert starved.mismatch and starved.deviation < -0.5
    with pytest.raises(ValueError, match="intended shares"):
        sample_ratio_check([1], [1], [1.5])


# -- decisions ---------------------------------------------------------------------------------


def _variant(vid: str, n: int, x: int, share: float | None = None) -> VariantData:
    return VariantData(vid, (n,), (x,), None if share is None else (share,))


def _by_id(decisions: list[Decision], vid: str) -> Decision:
    return next(d for d in decisions if d.variant_id == vid)


def test_the_customers_three_conditions() -> None:
    experiment = Experiment(
        "c1",
        "ctrl",
        (
            _variant("ctrl", 40_000, 800),
            _variant("big", 40_000, 1100),  # +37%: winner
            _variant("small", 40_000, 900),  # +12.5%: under the 20% minimum either way
            _variant("thin", 900, 40),  # +122% on 900 impressions: too little data
        ),
    )
    decisions = decide([experiment], DecisionSettings())
    assert [d.reason for d in decisions] == [
        Reason.CONTROL,
        Reason.WINNER,
        Reason.NOT_SIGNIFICANT,
        Reason.TOO_FEW_IMPRESSIONS,
    ]
    big = _by_id(decisions, "big")
    assert big.lift == pytest.approx(1100 / 800 - 1)
    assert big.interval[0] > 0 and big.interval[1] > big.lift
    assert big.confidence >= 0.95 and big.adjusted_p_value <= 0.05
    relaxed = decide([experiment], DecisionSettings(min_lift=0.1, min_impressions=500))
    assert _by_id(relaxed, "thin").reason is Reason.NOT_SIGNIFICANT
    assert _by_id(decide([experiment], DecisionSettings(min_lift=0.5)), "big").reason is (
        Reason.LIFT_BELOW_MINIMUM
    )


def test_clear_losers_are_flagged_with_the_same_test() -> None:
    experiment = Experiment(
        "c1", "ctrl", (_variant("ctrl", 40_000, 800), _variant("bad", 40_000, 480))
    )
    bad = _by_id(decide([experiment], DecisionSettings()), "bad")
    assert bad.loser and not bad.winner and bad.reason is Reason.LOSER
    assert bad.interval[1] < 0


def test_without_a_control_each_variant_faces_the_rest_pooled() -> None:
    experiment = Experiment(
        "c1",
        None,
        (_variant("a", 30_000, 600), _variant("b", 30_000, 600), _variant("c", 30_000, 900)),
    )
    decisions = decide([experiment], DecisionSettings())
    c = _by_id(decisions, "c")
    assert c.control == POOLED and c.winner
    assert c.control_impressions == 60_000 and c.control_clicks == 1200
    a = _by_id(decisions, "a")  # 2% against the pool's 2.5%: worse, but not a winner
    assert not a.winner and a.lift < 0


def test_the_correction_makes_a_borderline_winner_wait() -> None:
    variants = [_variant("ctrl", 20_000, 400), _variant("edge", 20_000, 500)]
    alone = decide([Experiment("c", "ctrl", tuple(variants))], DecisionSettings())
    assert _by_id(alone, "edge").winner
    crowd = variants + [_variant(f"null{i}", 20_000, 400) for i in range(9)]
    crowded = decide([Experiment("c", "ctrl", tuple(crowd))], DecisionSettings())
    edge = _by_id(crowded, "edge")
    assert not edge.winner and edge.reason is Reason.NOT_SIGNIFICANT
    assert edge.adjusted_p_value == pytest.approx(min(1.0, 10 * edge.p_value))
    family = [Experiment("c", "ctrl", tuple(crowd))]
    bh = _by_id(decide(family, DecisionSettings(correction=Correction.BH)), "edge")
    assert bh.adjusted_p_value == pytest.approx(min(1.0, 10 * edge.p_value))  # all nulls p = 1
    assert _by_id(decide(family, DecisionSettings(correction=Correction.NONE)), "edge").winner


def test_a_sample_ratio_mismatch_blocks_a_result() -> None:
    experiment = Experiment(
        "c1", "ctrl", (_variant("ctrl", 40_000, 800, 0.5), _variant("v", 10_000, 400, 0.5))
    )
    v = _by_id(decide([experiment], DecisionSettings()), "v")
    assert v.reason is Reason.SAMPLE_RATIO_MISMATCH and not v.winner and v.srm.mismatch


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="exceed"):
        VariantData("a", (10,), (11,))
    with pytest.raises(ValueError, match="unique"):
        Experiment("c", None, (_variant("a", 1, 0), _variant("a", 1, 0)))
    with pytest.raises(ValueError, match="control"):
        Experiment("c", "zzz", (_variant("a", 1, 0),))
    with pytest.raises(ValueError, match="same periods"):
        Experiment("c", None, (_variant("a", 1, 0), VariantData("b", (1, 1), (0, 0))))
    with pytest.raises(ValueError, match="confidence"):
        DecisionSettings(confidence=1.0)
    with pytest.raises(ValueError, match="min_lift"):
        DecisionSettings(min_lift=-0.1)


# -- guardrails --------------------------------------------------------------------------------


def _candidate(vid: str, budget: int | None = 1000, p: float = 0.001) -> Candidate:
    return Candidate(vid, f"s-{vid}", budget, p, 0.3)


# The planner's mechanics are tested with the ramp and the approval threshold off unless a test
# sets them (the defaults have both on: test_the_defaults_step_by_twenty_percent).
MECHANICS = {"ramp_max_step": None, "approval_threshold_minor": None}


def _plan(candidates: list[Candidate], total: int = 10_000, history=(), **guards):  # type: ignore[no-untyped-def]
    return plan_promotions(
        candidates,
        account_budget_minor=total,
        guardrails=Guardrails(**{**MECHANICS, **guards}),
        history=list(history),
        now=NOW,
        cycle_hour=NOW,
    )


def _past(vid: str, hours_ago: float, mode: str = "applied", **kw) -> PastAction:  # type: ignore[no-untyped-def]
    at = NOW - timedelta(hours=hours_ago)
    fields = {"old_budget_minor": 1000, "new_budget_minor": 2000, "target_minor": 2000, **kw}
    return PastAction(f"s-{vid}", at, at.replace(minute=0), mode=mode, **fields)


def test_the_defaults_step_by_twenty_percent_toward_double_and_respect_the_cap() -> None:
    plan = plan_promotions(
        [_candidate("a")],
        account_budget_minor=10_000,
        guardrails=Guardrails(),
        history=[],
        now=NOW,
        cycle_hour=NOW,
    )
    (action,) = plan.actions
    assert (action.new_budget_minor, action.target_minor, action.mode) == (1200, 2000, Mode.APPLY)
    capped = Candidate("a", "s-a", 1000, 0.001, 0.3, cap_minor=1100, cap_reason=Hold.NO_FUNDING)
    out = plan_promotions(
        [capped], account_budget_minor=10_000, guardrails=Guardrails(), history=[], now=NOW,
        cycle_hour=NOW,
    )  # fmt: skip
    assert out.actions[0].new_budget_minor == 1100
    none = Candidate("a", "s-a", 1000, 0.001, 0.3, cap_minor=1000, cap_reason=Hold.NO_FUNDING)
    held = plan_promotions(
        [none], account_budget_minor=10_000, guardrails=Guardrails(), history=[], now=NOW,
        cycle_hour=NOW,
    )  # fmt: skip
    assert held.held_back[0].reason is Hold.NO_FUNDING


def test_a_winner_is_doubled_without_the_ramp() -> None:
    plan = _plan([_candidate("a")])
    (action,) = plan.actions
    assert (action.old_budget_minor, action.new_budget_minor, action.mode) == (
        1000,
        2000,
        Mode.APPLY,
    )
    assert _plan([_candidate("a")], multiplier=1.5).actions[0].new_budget_minor == 1500


def test_kill_switch_zero_and_unknown_budgets_hold_everything() -> None:
    assert _plan([_candidate("a")], kill_switch=True).held_back[0].reason is Hold.KILL_SWITCH
    assert _plan([_candidate("a", 0)]).held_back[0].reason is Hold.ZERO_BUDGET
    assert _plan([_candidate("a", None)]).held_back[0].reason is Hold.BUDGET_UNKNOWN


def test_the_same_hour_is_never_acted_on_twice() -> None:
    history = [PastAction("s-a", NOW, NOW, 1000, 2000, 2000, "applied")]
    plan = _plan([_candidate("a", 2000)], history=history, cooldown_hours=0)
    assert not plan.actions and plan.held_back[0].reason is Hold.ALREADY_ACTED


def test_cooldown_counts_from_the_last_promotion_or_rollback() -> None:
    assert _plan([_candidate("a")], history=[_past("a", 10)]).held_back[0].reason is Hold.COOLDOWN
    assert _plan([_candidate("a")], history=[_past("a", 80)]).actions
    rolled = [_past("a", 80, "rolled_back"), _past("a", 5, kind="rollback")]
    assert _plan([_candidate("a")], history=rolled).held_back[0].reason is Hold.COOLDOWN
    # dry-run records do not hold back live promotions, but do in dry-run
    assert _plan([_candidate("a")], history=[_past("a", 10, "dry_run")]).actions
    held = _plan([_candidate("a")], history=[_past("a", 10, "dry_run")], dry_run=True)
    assert held.held_back[0].reason is Hold.COOLDOWN


def test_the_cap_on_changes_per_cycle_keeps_the_strongest() -> None:
    plan = _plan(
        [_candidate("weak", p=0.04), _candidate("strong", p=1e-6)], max_changes_per_cycle=1
    )
    assert [a.variant_id for a in plan.actions] == ["strong"]
    assert plan.held_back[0].reason is Hold.MAX_CHANGES


def test_ceilings_cut_a_change_or_hold_it() -> None:
    capped = _plan([_candidate("a")], max_variant_budget_minor=1500).actions[0]
    assert capped.new_budget_minor == 1500 and any(
        "variant ceiling" in g for g in capped.guardrails
    )
    at_cap = _plan([_candidate("a", 1500)], max_variant_budget_minor=1500)
    assert at_cap.held_back[0].reason is Hold.VARIANT_CEILING
    two = _plan([_candidate("a"), _candidate("b")], total=10_000, max_account_budget_minor=11_500)
    assert [a.new_budget_minor for a in two.actions] == [2000, 1500]
    full = _plan([_candidate("a")], total=11_500, max_account_budget_minor=11_500)
    assert full.held_back[0].reason is Hold.ACCOUNT_CEILING


def test_dry_run_and_approval_modes() -> None:
    assert _plan([_candidate("a")], dry_run=True).actions[0].mode is Mode.DRY_RUN
    big = _plan([_candidate("a")], approval_threshold_minor=999).actions[0]
    small = _plan([_candidate("a")], approval_threshold_minor=1000).actions[0]
    assert big.mode is Mode.PENDING_APPROVAL and small.mode is Mode.APPLY
    waiting = _plan([_candidate("a")], history=[_past("a", 100, "pending_approval")])
    assert waiting.held_back[0].reason is Hold.AWAITING_APPROVAL


def test_the_ramp_steps_toward_the_target_and_waits_between_steps() -> None:
    first = _plan([_candidate("a")], ramp_max_step=0.2).actions[0]
    assert (first.new_budget_minor, first.target_minor, first.rule) == (1200, 2000, "promote")
    step = _past("a", 10, new_budget_minor=1200, target_minor=2000)
    wait = _plan([_candidate("a", 1200)], history=[step], ramp_max_step=0.2, ramp_min_hours=48)
    assert wait.held_back[0].reason is Hold.RAMP_WAIT
    step = _past("a", 50, new_budget_minor=1200, target_minor=2000)
    nxt = _plan([_candidate("a", 1200)], history=[step], ramp_max_step=0.2, ramp_min_hours=48)
    assert (nxt.actions[0].new_budget_minor, nxt.actions[0].rule) == (1440, "ramp_step")
    last = _past("a", 50, new_budget_minor=1800, target_minor=2000)
    end = _plan([_candidate("a", 1800)], history=[last], ramp_max_step=0.2, ramp_min_hours=48)
    assert end.actions[0].new_budget_minor == 2000


@pytest.mark.parametrize(
    "bad",
    [
        {"multiplier": 1.0},
        {"max_variant_budget_minor": -1},
        {"max_account_budget_minor": 1.5},
        {"cooldown_hours": -1},
        {"max_changes_per_cycle": -2},
        {"ramp_max_step": 0},
        {"approval_ttl_hours": 0},
    ],
)
def test_nonsense_guardrails_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Guardrails(**bad)  # type: ignore[arg-type]


@given(
    budgets=st.lists(st.integers(0, 50_000), min_size=1, max_size=8),
    others=st.integers(0, 200_000),
    variant_cap=st.one_of(st.none(), st.integers(0, 60_000)),
    account_cap=st.one_of(st.none(), st.integers(0, 400_000)),
    multiplier=st.floats(1.01, 10.0),
    ramp=st.one_of(st.none(), st.floats(0.01, 2.0)),
    max_changes=st.integers(0, 8),
)
@settings(max_examples=300, deadline=None)
def test_a_plan_never_breaks_a_ceiling_nor_touches_an_ad_set_twice(
    budgets: list[int],
    others: int,
    variant_cap: int | None,
    account_cap: int | None,
    multiplier: float,
    ramp: float | None,
    max_changes: int,
) -> None:
    candidates = [_candidate(f"v{i}", b, p=0.001 * (i + 1)) for i, b in enumerate(budgets)]
    total = sum(budgets) + others
    plan = _plan(
        candidates,
        total=total,
        multiplier=multiplier,
        ramp_max_step=ramp,
        max_variant_budget_minor=variant_cap,
        max_account_budget_minor=account_cap,
        max_changes_per_cycle=max_changes,
    )
    assert len(plan.actions) + len(plan.held_back) == len(candidates)
    assert len(plan.actions) <= max_changes
    assert len({a.ad_set_id for a in plan.actions}) == len(plan.actions)
    for a in plan.actions:
        assert (
            a.old_budget_minor < a.new_budget_minor <= math.floor(a.old_budget_minor * multiplier)
            or a.new_budget_minor == a.old_budget_minor + 1
        )
        if variant_cap is not None:
            assert a.new_budget_minor <= variant_cap
    if account_cap is not None and plan.actions:
        after = total + sum(a.new_budget_minor - a.old_budget_minor for a in plan.actions)
        assert after <= max(account_cap, total)
