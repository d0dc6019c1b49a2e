"""The compound learner's meta-learner and base predictors (pure core, synthetic rows)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit, logit

from adflywheel.loops.bandit import AllocationSettings, CampaignEvidence, RatePrior, VariantEvidence
from adflywheel.loops.compound.ensemble import (
    BasePrediction,
    EnsembleWeights,
    Holdout,
    combine,
    combine_many,
    fit_convex,
    headline_accuracy,
    learn_weights,
)
from adflywheel.loops.compound.predictors import dna_pattern_prediction, thompson_predictions
from adflywheel.loops.dna.patterns import AdOutcome, gene_patterns

BASE = float(logit(0.015))


def _rows(seed: int = 0, m: int = 400) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    u, v = rng.normal(0, 0.3, m), rng.normal(0, 0.3, m)
    n = rng.integers(2_000, 20_000, m).astype(float)
    k = rng.binomial(n.astype(int), expit(BASE + u + v)).astype(float)
    return u, v, n, k


def test_weights_are_convex_and_the_blend_wins_when_members_carry_different_signal() -> None:
    u, v, n, k = _rows()
    holdout = Holdout(
        n,
        k,
        np.arange(len(n)),
        {
            "thompson": expit(BASE + u),
            "xgboost": expit(BASE + v),
            "dna_pattern": np.full(len(n), 0.015),
        },
    )
    learnt = learn_weights(holdout)
    assert learnt.method == "blend"
    w = np.array(list(learnt.weights.values()))
    assert np.all(w >= 0) and math.isclose(w.sum(), 1.0, abs_tol=1e-9)
    # Each member holds half the signal: equal weights and a slope of about 2 recover it.
    assert learnt.weights["thompson"] == pytest.approx(0.5, abs=0.1)
    assert learnt.weights["dna_pattern"] < 0.1
    assert learnt.slope == pytest.approx(2.0, abs=0.4)
    members = learnt.metrics["models"]
    assert learnt.metrics["ensemble_cv"]["log_loss"] < min(m["log_loss"] for m in members.values())


def test_fit_convex_puts_all_weight_on_the_true_predictor() -> None:
    _, _, n, k = _rows(1)
    rng = np.random.default_rng(2)
    truth = np.log((k + 0.5) / (n - k + 0.5))
    z = np.column_stack([truth, truth + rng.normal(0, 1.0, len(n))])
    w = fit_convex(z, n, k)
    assert w.sum() == pytest.approx(1.0) and w[0] > 0.9


def test_the_guard_refuses_a_blend_that_is_not_better_than_its_best_member() -> None:
    u, v, n, k = _rows(3)
    truth = expit(BASE + u + v)
    holdout = Holdout(
        n, k, np.arange(len(n)), {"thompson": truth, "xgboost": np.full(len(n), 0.015)}
    )
    learnt = learn_weights(holdout)
    assert learnt.method == "best_single"
    assert learnt.weights == {"thompson": 1.0, "xgboost": 0.0}
    assert "thompson alone" in learnt.reason
    out = combine({"thompson": BasePrediction(0.02, 0.1), "xgboost": BasePrediction(0.01)}, learnt)
    assert out is not None
    assert out.prediction == pytest.approx(0.02) and out.models_used == ("thompson",)


def test_recalibration_after_blending_fixes_a_shared_bias() -> None:
    u, v, n, k = _rows(4)
    # Both members over-predict by 2× in odds: the blend needs the recalibration to be right.
    holdout = Holdout(
        n,
        k,
        np.arange(len(n)),
        {"thompson": expit(BASE + u + math.log(2)), "xgboost": expit(BASE + v + math.log(2))},
    )
    learnt = learn_weights(holdout)
    assert learnt.method == "blend"
    assert learnt.intercept < -0.3
    models = learnt.metrics["models"]
    assert models["thompson"]["calibration"] > 1.5
    assert learnt.metrics["ensemble_cv"]["calibration"] == pytest.approx(1.0, abs=0.05)


def test_too_small_a_holdout_is_a_fallback_with_a_reason() -> None:
    n, k = np.array([100.0, 200.0]), np.array([1.0, 2.0])
    learnt = learn_weights(Holdout(n, k, np.arange(2), {"thompson": np.array([0.01, 0.01])}))
    assert learnt.method == "fallback" and "too small" in learnt.reason
    # Without learnt weights the first predictor in the preference order answers alone.
    out = combine({"xgboost": BasePrediction(0.03, 0.4)}, learnt)
    assert out is not None and out.prediction == pytest.approx(0.03)
    assert combine({}, learnt) is None


def test_missing_predictor_is_left_out_and_weights_renormalised() -> None:
    learnt = EnsembleWeights({"thompson": 0.5, "xgboost": 0.3, "dna_pattern": 0.2}, spreads={})
    out = combine(
        {"thompson": BasePrediction(0.02, 0.1), "dna_pattern": BasePrediction(0.01)}, learnt
    )
    assert out is not None
    assert out.models_used == ("thompson", "dna_pattern")
    assert out.weights == {
        "thompson": pytest.approx(0.5 / 0.7, abs=1e-6),
        "dna_pattern": pytest.approx(0.2 / 0.7, abs=1e-6),
    }
    batch, _ = combine_many(
        {"thompson": np.array([0.02, np.nan]), "dna_pattern": np.array([0.01, np.nan])},
        {"thompson": np.array([0.1, np.nan])},
        learnt,
    )
    assert batch[0] == pytest.approx(out.prediction) and np.isnan(batch[1])


def test_intervals_widen_and_confidence_falls_with_less_data() -> None:
    settings = AllocationSettings()
    campaign = CampaignEvidence(
        "c",
        (
            VariantEvidence("rich", 50_000, 1_000, 0),
            VariantEvidence("poor", 500, 10, 0),
            VariantEvidence("new", 0, 0, 0, prior=RatePrior(0.03, 300)),
        ),
    )
    preds = thompson_predictions([campaign], settings)
    assert preds["rich"].sd_logit < preds["poor"].sd_logit < preds["new"].sd_logit  # type: ignore[operator]
    assert preds["new"].ctr == pytest.approx(0.03, rel=1e-6)  # no data: its prior
    learnt = EnsembleWeights({"thompson": 1.0}, between_ad_sd=0.5)
    rich, poor = (combine({"thompson": preds[v]}, learnt) for v in ("rich", "poor"))
    assert rich is not None and poor is not None
    assert (rich.upper - rich.lower) < (poor.upper - poor.lower)
    assert rich.confidence > poor.confidence
    # Disagreement widens the interval too.
    agree = combine(
        {"thompson": BasePrediction(0.02, 0.1), "xgboost": BasePrediction(0.02, 0.1)},
        EnsembleWeights({"thompson": 0.5, "xgboost": 0.5}),
    )
    split = combine(
        {"thompson": BasePrediction(0.04, 0.1), "xgboost": BasePrediction(0.01, 0.1)},
        EnsembleWeights({"thompson": 0.5, "xgboost": 0.5}),
    )
    assert agree is not None and split is not None and split.sd_logit > agree.sd_logit


def test_dna_pattern_predictor_follows_the_gene_effects() -> None:
    rng = np.random.default_rng(5)
    ads = []
    for i in range(40):
        question = i % 2 == 0
        ctr = 0.02 * (1.6 if question else 1.0) * math.exp(rng.normal(0, 0.1))
        imps = 20_000
        hook = "question" if question else "bold_claim"
        ads.append(AdOutcome({"hook_type": hook}, imps, int(rng.binomial(imps, ctr))))
    found = gene_patterns(ads)
    q = dna_pattern_prediction(found, {"hook_type": "question"})
    b = dna_pattern_prediction(found, {"hook_type": "bold_claim"})
    assert q is not None and b is not None and q.ctr > 1.3 * b.ctr
    assert dna_pattern_prediction(gene_patterns([]), {"hook_type": "question"}) is None


def test_headline_accuracy_and_bad_inputs() -> None:
    n, k = np.array([1000.0, 1000.0]), np.array([10.0, 30.0])
    assert headline_accuracy(k / n, n, k) == pytest.approx(1.0)
    assert headline_accuracy(np.array([0.02, 0.02]), n, k) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        BasePrediction(1.5)
    with pytest.raises(ValueError):
        Holdout(n, np.array([2000.0, 1.0]), np.arange(2), {})
    with pytest.raises(ValueError):
        Holdout(n, k, np.arange(2), {"oracle": k / n})


def test_the_guard_refuses_a_blend_whose_gain_is_within_bootstrap_noise() -> None:
    # Two copies of the same signal with a little independent noise each: blending them gains a
    # hair in cross-fitted log-loss, far less than which creatives happened to be held out.
    rng = np.random.default_rng(0)
    m = 200
    u = rng.normal(0, 0.3, m)
    n = rng.integers(2_000, 20_000, m).astype(float)
    k = rng.binomial(n.astype(int), expit(BASE + u)).astype(float)
    members = {
        "thompson": expit(BASE + u + rng.normal(0, 0.05, m)),
        "xgboost": expit(BASE + u + rng.normal(0, 0.05, m)),
    }
    learnt = learn_weights(Holdout(n, k, np.arange(m), members))
    best = learnt.metrics["best_single"]
    cv_loss = learnt.metrics["ensemble_cv"]["log_loss"]
    assert cv_loss < learnt.metrics["models"][best]["log_loss"]  # a gain, but a negligible one
    boot = learnt.metrics["ensemble_vs_best"]
    assert boot["ci_lower"] < 0 < boot["ci_upper"]
    assert learnt.method == "best_single"
    assert learnt.weights[best] == 1.0 and "bootstrap noise" in learnt.reason


def test_a_clearly_better_blend_ships_with_its_bootstrap_below_zero() -> None:
    u, v, n, k = _rows(5)
    members = {"thompson": expit(BASE + u), "xgboost": expit(BASE + v)}
    learnt = learn_weights(Holdout(n, k, np.arange(len(n)), members))
    assert learnt.method == "blend"
    assert learnt.metrics["ensemble_vs_best"]["ci_upper"] < 0
    assert "below 0" in learnt.reason
