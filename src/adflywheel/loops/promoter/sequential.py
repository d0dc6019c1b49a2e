"""An always-valid comparison of two click rates, stratified by allocation period.

Why stratified: the bandit changes the budget split between variants over time while the base
CTR moves (time of day, fatigue, drift). Pooling counts across periods then compares the variant
at one mix of hours with the control at another (Simpson's paradox; Optimizely's "Epoch Stats
Engine" makes the same point). Within one period the split is constant, so the comparison is fair
there, and the periods are combined with Mantel–Haenszel weights.

* Estimate: the Mantel–Haenszel rate ratio over periods ``k`` (variant ``a_k`` clicks of ``N1_k``
  impressions, control ``b_k`` of ``N0_k``, ``T_k = N1_k + N0_k``)::

      RR = sum(a_k N0_k / T_k) / sum(b_k N1_k / T_k)

  It equals the ratio of the two arms' rates standardised to the same mix of periods.
* Variance of ``log RR``: Greenland & Robins (1985, Biometrics 41:55-68), consistent both for
  many sparse periods (hourly strata with a handful of clicks) and for few large ones; with one
  period it is the textbook ``1/a - 1/N1 + 1/b - 1/N0``.
* Test: the normal-mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis
  & Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests", Operations Research
  70(3), 2022 (arXiv 1512.04922), on ``theta = log RR`` with a ``N(0, tau^2)`` mixing
  distribution. Its likelihood ratio ``Lambda`` is a (nonnegative, asymptotic) martingale under
  ``theta = 0``, so by Ville's inequality ``P(Lambda_t >= 1/alpha for some t) <= alpha``: the
  p-value ``min(1, 1/Lambda_t)`` and the matching confidence sequence may be checked every hour
  without inflating the error. It is Robbins' normal mixture, the boundary that Howard, Ramdas,
  McAuliffe & Sekhon ("Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals
  of Statistics 49(2), 2021, eq. (14)) give in closed form.
* Mixing parameter: ``tau = log(1 + min_lift)`` by default. The boundary is tightest (closest to
  a fixed-sample interval) when the estimate's variance is ``sigma*^2 = tau^2 / (-2 log alpha +
  log(1 - 2 log alpha))`` (Howard et al. 2021, the optimal ``rho`` for a target time); at that
  point the interval's half-width is about ``1.1 tau``. So ``tau = log(1 + min_lift)`` makes the
  test sharpest exactly when a lift of the minimum size first becomes detectable, which is the
  practice Johari et al. recommend (match the mixture to the effect sizes that matter).

Everything is vectorised over leading axes so that the benchmark runs the same code as the API.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RatioEstimate:
    """Per comparison (leading axes of the input): ``log_ratio`` and ``variance`` are NaN where
    the ratio is not estimable (an arm without clicks); the rates are standardised to the
    common mix of periods."""

    log_ratio: FloatArray
    variance: FloatArray
    variant_rate: FloatArray
    control_rate: FloatArray


def _as_float(value: ArrayLike) -> FloatArray:
    out: FloatArray = np.asarray(value, dtype=np.float64)
    return out


def _terms(
    variant_impressions: ArrayLike,
    variant_clicks: ArrayLike,
    control_impressions: ArrayLike,
    control_clicks: ArrayLike,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-period Mantel–Haenszel terms ``(a N0/T, b N1/T, N1 N0/T, Greenland–Robins P)``."""
    n1, a = _as_float(variant_impressions), _as_float(variant_clicks)
    n0, b = _as_float(control_impressions), _as_float(control_clicks)
    t = n1 + n0
    both = (n1 > 0) & (n0 > 0)
    safe_t = np.where(both, t, 1.0)
    r = np.where(both, a * n0 / safe_t, 0.0)
    s = np.where(both, b * n1 / safe_t, 0.0)
    h = np.where(both, n1 * n0 / safe_t, 0.0)
    p = np.where(both, ((a + b) * n1 * n0 - a * b * t) / safe_t**2, 0.0)
    return r, s, h, p


def _finish(r: FloatArray, s: FloatArray, h: FloatArray, p: FloatArray) -> RatioEstimate:
    ok = (r > 0) & (s > 0) & (p > 0)
    safe_r, safe_s = np.where(ok, r, 1.0), np.where(ok, s, 1.0)
    safe_h = np.where(h > 0, h, 1.0)
    return RatioEstimate(
        log_ratio=np.asarray(np.where(ok, np.log(safe_r) - np.log(safe_s), np.nan), np.float64),
        variance=np.asarray(np.where(ok, p / (safe_r * safe_s), np.nan), np.float64),
        variant_rate=np.asarray(np.where(h > 0, r / safe_h, 0.0), np.float64),
        control_rate=np.asarray(np.where(h > 0, s / safe_h, 0.0), np.float64),
    )


def mh_log_ratio(
    variant_impressions: ArrayLike,
    variant_clicks: ArrayLike,
    control_impressions: ArrayLike,
    control_clicks: ArrayLike,
) -> RatioEstimate:
    """Mantel–Haenszel log rate ratio and its Greenland–Robins variance.

    Inputs have shape ``(..., K)``: ``K`` allocation periods along the last axis; periods where
    an arm has no impressions carry no information and drop out.
    """
    r, s, h, p = _terms(variant_impressions, variant_clicks, control_impressions, control_clicks)
    return _finish(r.sum(-1), s.sum(-1), h.sum(-1), p.sum(-1))


def mh_log_ratio_path(
    variant_impressions: ArrayLike,
    variant_clicks: ArrayLike,
    control_impressions: ArrayLike,
    control_clicks: ArrayLike,
) -> RatioEstimate:
    """The estimate after each period: element ``k`` of the last axis uses periods ``0..k``
    (what an hourly look at the data so far sees). Same shapes in and out."""
    r, s, h, p = _terms(variant_impressions, variant_clicks, control_impressions, control_clicks)
    return _finish(r.cumsum(-1), s.cumsum(-1), h.cumsum(-1), p.cumsum(-1))


def mixing_sd_for(min_lift: float) -> float:
    """The default mixing standard deviation on the log-ratio scale (see the module notes)."""
    return math.log1p(max(min_lift, 0.05))


def log_e_value(estimate: ArrayLike, variance: ArrayLike, tau: float) -> FloatArray:
    """``log Lambda`` of the two-sided mSPRT of ``theta = 0`` (Johari et al. 2022, with the
    per-observation variance ``V/n`` replaced by the estimator's variance ``sigma^2``)::

        Lambda = sqrt(s2 / (s2 + tau2)) * exp(tau2 * est^2 / (2 * s2 * (s2 + tau2)))

    NaN inputs (not estimable) give ``log Lambda = 0``: no evidence.
    """
    est, s2 = _as_float(estimate), _as_float(variance)
    tau2 = tau * tau
    valid = np.isfinite(est) & np.isfinite(s2) & (s2 > 0)
    e, v = np.where(valid, est, 0.0), np.where(valid, s2, 1.0)
    out = 0.5 * np.log(v / (v + tau2)) + tau2 * e * e / (2.0 * v * (v + tau2))
    result: FloatArray = np.where(valid, out, 0.0)
    return result


def always_valid_p_value(estimate: ArrayLike, variance: ArrayLike, tau: float) -> FloatArray:
    """``min(1, 1/Lambda)``: an anytime-valid p-value for ``theta = 0`` (two-sided)."""
    out: FloatArray = np.exp(-np.maximum(log_e_value(estimate, variance, tau), 0.0))
    return out


def cs_half_width(variance: ArrayLike, tau: float, alpha: float) -> FloatArray:
    """Half-width of the (1 - alpha) confidence sequence: the set of ``theta`` the mSPRT for
    ``theta`` does not reject, ``est +- sigma * sqrt((1 + s2/tau2)(2 log(1/alpha) +
    log(1 + tau2/s2)))``. Infinite where not estimable."""
    s2 = _as_float(variance)
    tau2 = tau * tau
    valid = np.isfinite(s2) & (s2 > 0)
    v = np.where(valid, s2, 1.0)
    width = np.sqrt(v * (1.0 + v / tau2) * (2.0 * math.log(1.0 / alpha) + np.log1p(tau2 / v)))
    out: FloatArray = np.where(valid, width, np.inf)
    return out


def fixed_z_test(
    variant_impressions: ArrayLike,
    variant_clicks: ArrayLike,
    control_impressions: ArrayLike,
    control_clicks: ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """The naive baseline: the pooled two-proportion z-test on cumulative counts, valid for one
    look at a sample size fixed in advance and not for hourly looks. Returns ``(z, p two-sided)``;
    ``z = 0, p = 1`` where undefined."""
    n1, x1 = _as_float(variant_impressions), _as_float(variant_clicks)
    n0, x0 = _as_float(control_impressions), _as_float(control_clicks)
    ok = (n1 > 0) & (n0 > 0)
    safe1, safe0 = np.where(ok, n1, 1.0), np.where(ok, n0, 1.0)
    pooled = np.where(ok, (x1 + x0) / (safe1 + safe0), 0.0)
    se2 = pooled * (1.0 - pooled) * (1.0 / safe1 + 1.0 / safe0)
    good = ok & (se2 > 0)
    z = np.where(good, (x1 / safe1 - x0 / safe0) / np.sqrt(np.where(good, se2, 1.0)), 0.0)
    p = 2.0 * stats.norm.sf(np.abs(z))
    return np.asarray(z, dtype=np.float64), np.asarray(p, dtype=np.float64)
