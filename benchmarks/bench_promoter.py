"""Benchmark of the auto-promoter's test (loop 7) by simulation (synthetic Bernoulli clicks).

* A/A: two identical variants (2% CTR, 500 impressions per arm per hour) checked every hour for
  14 days (336 looks), 2,000 repetitions: how often each rule ever promotes the variant, with a
  Clopper–Pearson 95% interval; side by side with the naive fixed-sample z-test checked hourly
  on the same paths. A consistency check runs ``decide`` itself (the code behind
  ``POST /api/ml/auto-promote/evaluate``) on a subset of the paths and must agree with the
  vectorised rule on every look.
* Allocation drift: the same A/A, but the CTR swings over the day and the split follows it (70%
  of traffic to the variant in the high hours): pooled cumulative counts against the per-period
  (hourly) stratified test.
* Power: true lifts of 20%, 30% and 50% at the same traffic, 7 days of hourly looks: the share
  promoted and the median hours to promotion; plus the mixing parameter's sensitivity.
* Many variants: a control and 9 challengers, one truly +30%, 14 days of hourly looks: the
  family-wise error (Holm), the false discovery rate (BH) and, for contrast, no correction.

Run: ``python -m benchmarks.bench_promoter [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from adflywheel.loops.promoter import (
    Correction,
    DecisionSettings,
    Experiment,
    VariantData,
    adjust,
    always_valid_p_value,
    decide,
    fixed_z_test,
    mh_log_ratio,
    mh_log_ratio_path,
)

Array = NDArray[np.float64]
CTR, PER_HOUR = 0.02, 500


def _rate(hits: object) -> dict[str, float | int]:
    """Share of repetitions with a hit, and its exact (Clopper–Pearson) 95% interval."""
    flags = np.asarray(hits, dtype=bool)
    k, n = int(flags.sum()), int(flags.size)
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return {"rate": k / n, "ci_low": float(ci.low), "ci_high": float(ci.high), "n": n}


def _paths(
    rng: np.random.Generator, reps: int, hours: int, lifts: Array
) -> tuple[Array, Array, Array]:
    """Cumulative impressions (same for every arm), control clicks and variant clicks
    ``(reps, hours, len(lifts))`` at ``PER_HOUR`` impressions per arm per hour."""
    n = np.broadcast_to(PER_HOUR * np.arange(1.0, hours + 1)[None, :], (reps, hours)).copy()
    control = rng.binomial(PER_HOUR, CTR, (reps, hours)).cumsum(1).astype(np.float64)
    variants = rng.binomial(PER_HOUR, CTR * (1 + lifts), (reps, hours, lifts.size))
    return n, control, variants.cumsum(1).astype(np.float64)


def _winners(
    n: Array, xv: Array, xc: Array, settings: DecisionSettings, correction_axis: bool = False
) -> NDArray[np.bool_]:
    """``decide``'s winner rule, vectorised, with cumulative counts as one period. With
    ``correction_axis`` the last axis is the family of challengers sharing one control."""
    nn = np.broadcast_to(n, xv.shape) if correction_axis else n
    nc = nn
    xc_b = np.broadcast_to(xc[..., None], xv.shape) if correction_axis else xc
    est = mh_log_ratio(nn[..., None], xv[..., None], nc[..., None], xc_b[..., None])
    p = always_valid_p_value(est.log_ratio, est.variance, settings.tau)
    eligible = (nn >= settings.min_impressions) & np.isfinite(est.log_ratio)
    p = np.where(eligible, p, 1.0)
    adjusted = adjust(p, settings.correction) if correction_axis else p
    lift = np.expm1(np.nan_to_num(est.log_ratio, nan=0.0))
    out: NDArray[np.bool_] = eligible & (adjusted <= settings.alpha) & (lift >= settings.min_lift)
    return out


def _significance_only(correction: Correction = Correction.HOLM) -> DecisionSettings:
    """The rule without the minimum lift, at the default rule's mixing parameter."""
    return DecisionSettings(min_lift=0.0, mixing_sd=math.log(1.2), correction=correction)


def _naive(n: Array, xv: Array, xc: Array, min_lift: float) -> tuple[Any, Any]:
    z, p = fixed_z_test(n, xv, n, xc)
    any_difference = p <= 0.05
    lift = np.where(xc > 0, xv / np.where(xc > 0, xc, 1.0) - 1.0, 0.0)
    promote = any_difference & (z > 0) & (n >= 1000) & (lift >= min_lift)
    return any_difference, promote


def aa(reps: int, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    n, xc, xv3 = _paths(rng, reps, 336, np.zeros(1))
    xv = xv3[..., 0]
    rule = DecisionSettings()
    est = mh_log_ratio(n[..., None], xv[..., None], n[..., None], xc[..., None])
    p = always_valid_p_value(est.log_ratio, est.variance, rule.tau)
    any_difference = (p <= rule.alpha).any(1)
    promoted = _winners(n, xv, xc, rule).any(1)
    significance_only = _winners(n, xv, xc, _significance_only()).any(1)
    naive_any, naive_promote = _naive(n, xv, xc, rule.min_lift)
    _, naive_sig = _naive(n, xv, xc, 0.0)
    seconds = time.perf_counter() - t0
    return {
        "setup": f"{reps} reps x 336 hourly looks, CTR {CTR}, {PER_HOUR} imp/arm/hour",
        "seconds": round(seconds, 3),
        "always_valid_any_difference": _rate(any_difference),
        "always_valid_promoted_min_lift_0": _rate(significance_only),
        "always_valid_promoted_full_rule": _rate(promoted),
        "naive_any_difference": _rate(naive_any.any(1)),
        "naive_promoted_min_lift_0": _rate(naive_sig.any(1)),
        "naive_promoted_full_rule": _rate(naive_promote.any(1)),
        "decide_agrees_on_looks": _consistency(n[:40], xv[:40], xc[:40], rule),
    }


def _consistency(n: Array, xv: Array, xc: Array, rule: DecisionSettings) -> int:
    """Run the real ``decide`` on every look of the given paths; count the looks (all must
    agree with the vectorised rule, else this raises)."""
    fast = _winners(n, xv, xc, rule)
    looks = 0
    for i in range(n.shape[0]):
        for t in range(n.shape[1]):
            experiment = Experiment(
                "aa",
                "a",
                (
                    VariantData("a", (int(n[i, t]),), (int(xc[i, t]),)),
                    VariantData("b", (int(n[i, t]),), (int(xv[i, t]),)),
                ),
            )
            winner = decide([experiment], rule)[1].winner
            if winner != bool(fast[i, t]):
                raise AssertionError(f"decide and the vectorised rule disagree at {i}, {t}")
            looks += 1
    return looks


def drift(reps: int, seed: int = 2) -> dict[str, Any]:
    """A/A under a split that follows a daily CTR swing: pooling is biased, strata are not."""
    rng = np.random.default_rng(seed)
    hours = 336
    phase = np.sin(2 * np.pi * np.arange(hours) / 24.0)
    ctr = CTR * (1 + 0.5 * phase)
    share = np.where(phase > 0, 0.7, 0.3)
    nv = np.broadcast_to(np.rint(2 * PER_HOUR * share), (reps, hours)).astype(np.float64)
    nc = np.broadcast_to(2 * PER_HOUR - nv[0], (reps, hours)).astype(np.float64)
    xv = rng.binomial(nv.astype(np.int64), ctr).astype(np.float64)
    xc = rng.binomial(nc.astype(np.int64), ctr).astype(np.float64)
    rule = DecisionSettings()
    cum = [a.cumsum(1) for a in (nv, xv, nc, xc)]
    pooled = mh_log_ratio(*(a[..., None] for a in cum))
    strata = mh_log_ratio_path(nv, xv, nc, xc)
    out: dict[str, Any] = {"setup": "CTR 2% +-50% over the day; variant gets 70% when high"}
    for name, est in (("pooled", pooled), ("stratified_hourly", strata)):
        p = always_valid_p_value(est.log_ratio, est.variance, rule.tau)
        lift = np.expm1(np.nan_to_num(est.log_ratio))
        winner = (p <= rule.alpha) & (lift >= rule.min_lift) & (cum[0] >= 1000)
        out[name] = {
            "promoted": _rate(winner.any(1)),
            "mean_final_lift": float(np.nanmean(lift[:, -1])),
        }
    return out


def power(reps: int, seed: int = 3, taus: tuple[float | None, ...] = (None,)) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    lifts = np.array([0.2, 0.3, 0.5])
    n, xc, xv = _paths(rng, reps, 168, lifts)
    out: dict[str, Any] = {"setup": f"{reps} reps, 7 days of hourly looks, CTR {CTR}"}
    for tau in taus:
        rule = DecisionSettings(mixing_sd=tau)
        label = f"mixing_sd={rule.tau:.3f}"
        out[label] = {}
        for j, lift in enumerate(lifts):
            win = _winners(n, xv[..., j], xc, rule)
            hit = win.any(1)
            first = win.argmax(1) + 1.0
            out[label][f"lift_{lift:.0%}"] = {
                "promoted_within_7_days": _rate(hit),
                "median_hours_to_promotion": float(np.median(np.where(hit, first, np.inf))),
                "median_hours_among_promoted": float(np.median(first[hit])) if hit.any() else None,
            }
    return out


def many(reps: int, seed: int = 4, chunk: int = 250) -> dict[str, Any]:
    """Control + 9 challengers, one truly +30%; 14 days of hourly looks. Under the full rule
    (and with ``min_lift = 0``, where only the statistics stand between a null and a
    promotion)."""
    rng = np.random.default_rng(seed)
    lifts = np.array([0.3] + [0.0] * 8)
    rules = {
        f"{c.value}{suffix}": rule
        for c in Correction
        for suffix, rule in (
            ("", DecisionSettings(correction=c)),
            ("_min_lift_0", _significance_only(correction=c)),
        )
    }
    results: dict[str, list[Any]] = {name: [] for name in rules}
    for start in range(0, reps, chunk):
        size = min(chunk, reps - start)
        n, xc, xv = _paths(rng, size, 336, lifts)
        for name, rule in rules.items():
            ever = _winners(n[..., None], xv, xc, rule, correction_axis=True).any(1)
            results[name].append(ever)
    out: dict[str, Any] = {"setup": f"{reps} reps; control + 9 challengers, one +30%; 14 days"}
    for name, parts in results.items():
        ever = np.concatenate(parts)
        false = ever[:, 1:].sum(1)
        total = ever.sum(1)
        out[name] = {
            "fwer_any_null_promoted": _rate(false > 0),
            "fdr_false_share_of_promoted": float(np.mean(false / np.maximum(total, 1))),
            "true_winner_promoted": _rate(ever[:, 0]),
        }
    return out


def run(quick: bool = False) -> dict[str, Any]:
    reps = 300 if quick else 2000
    t0 = time.perf_counter()
    taus = (None,) if quick else (0.1, None, 0.4)
    return {
        "aa": aa(reps),
        "drift": drift(reps),
        "power": power(reps, taus=taus),
        "many_variants": many(reps),
        "seconds_total": round(time.perf_counter() - t0, 2),
        "note": "synthetic Bernoulli clicks; always-valid = mSPRT on the MH log rate ratio, "
        f"tau = log(1.2) = {math.log(1.2):.3f} unless stated",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick), indent=2))


if __name__ == "__main__":
    main()
