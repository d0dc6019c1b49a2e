"""The meta-learner of the compound learner (loop 5): how much to trust each base predictor.

Three predictors of a variant's CTR (the Thompson posterior, XGBoost, the DNA patterns) are
blended in logit space with convex weights, ``z = Σ w_k · logit(p_k)``, ``w = softmax(θ)``, where
θ minimises the impression-weighted binomial log-loss on a recent time-forward holdout (rows of
variant × window with impressions and clicks; no predictor was fitted on them). The blend is then
recalibrated (Platt scaling in logit space: ``a + b·z``, fitted on the same holdout), because a
convex blend of calibrated logits is not calibrated in general.

The guard: weights and recalibration are cross-fitted over two folds of the holdout (split by
group, e.g. the creative), and the blend ships only if its cross-fitted log-loss beats the best
single predictor's log-loss on the same rows by more than noise: the 95% interval of a paired
bootstrap over groups of (blend − best single) log-loss must lie wholly below 0. Otherwise the
weights collapse to that predictor (``method = "best_single"``): an ensemble that is not
measurably better than its best member is never shipped.

Uncertainty: each predictor brings a spread in logit space (Thompson: its posterior; DNA: the
unexplained between-ad spread; XGBoost: its holdout residual spread, estimated here). The
ensemble's spread is the weighted mixture variance (members' spreads plus their disagreement),
scaled by a factor fitted on the holdout so that standardised residuals have unit variance once
binomial noise is removed. ``confidence`` is the share of the account's between-ad logit variance
that the prediction removes: 0 means "no better than the base rate", 1 "no doubt left".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit, log_expit, logit, softmax

from .evaluation import PairedDifference, calibration, entropy, log_loss, paired_bootstrap

FloatArray = NDArray[np.float64]
MODELS: tuple[str, ...] = ("thompson", "xgboost", "dna_pattern")
Z90 = 1.6448536
_EPS = 1e-6
MIN_ROWS = 8
MIN_CLICKS = 20
MIN_SCALE_ROWS = 30
BOOTSTRAP_RESAMPLES = 500  # the guard's paired bootstrap over creatives (seeded)


def clip_ctr(p: Any) -> FloatArray:
    return np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)


def headline_accuracy(p: Any, impressions: Any, clicks: Any) -> float:
    """The note's "1 − impression-weighted relative error": ``1 − Σ n·|p̂ − y| / Σ n·y`` with
    ``y = clicks / impressions``, i.e. one minus the absolute click error over the clicks."""
    n, k = np.asarray(impressions, np.float64), np.asarray(clicks, np.float64)
    if k.sum() <= 0:
        raise ValueError("headline accuracy needs at least one click")
    return float(1.0 - np.abs(n * np.asarray(p, np.float64) - k).sum() / k.sum())


def measures(
    p: Any, impressions: FloatArray, clicks: FloatArray, base_rate: float
) -> dict[str, Any]:
    """Log-loss, NE, headline accuracy and calibration of one predictor on rows."""
    q = clip_ctr(p)
    loss = log_loss(q, impressions, clicks)
    return {
        "log_loss": loss,
        "ne": loss / entropy(base_rate),
        "accuracy": headline_accuracy(q, impressions, clicks),
        "calibration": calibration(q, impressions, clicks),
    }


@dataclass(frozen=True, slots=True)
class BasePrediction:
    """One predictor's answer for one variant: CTR and its spread in logit space (``None``: the
    predictor has no own measure; the learnt holdout spread is used)."""

    ctr: float
    sd_logit: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ctr) and 0.0 < self.ctr < 1.0):
            raise ValueError(f"a CTR prediction must be in (0, 1), got {self.ctr!r}")
        if self.sd_logit is not None and not (math.isfinite(self.sd_logit) and self.sd_logit >= 0):
            raise ValueError(f"sd_logit must be finite and >= 0, got {self.sd_logit!r}")


@dataclass(frozen=True, slots=True)
class Holdout:
    """Rows of (variant, window): impressions, clicks, each predictor's CTR (NaN where it could
    not answer), a group per row (the creative) for the cross-fitting folds, and each
    predictor's own logit spread per row (NaN where it has none)."""

    impressions: FloatArray
    clicks: FloatArray
    groups: NDArray[np.int64]
    predictions: Mapping[str, FloatArray]
    spreads: Mapping[str, FloatArray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.impressions.shape[0]
        if self.clicks.shape != (n,) or self.groups.shape != (n,):
            raise ValueError("impressions, clicks and groups must be aligned 1-d arrays")
        if np.any(self.clicks > self.impressions) or np.any(self.impressions <= 0):
            raise ValueError("every row needs impressions > 0 and clicks <= impressions")
        for name, values in (*self.predictions.items(), *self.spreads.items()):
            if name not in MODELS:
                raise ValueError(f"unknown predictor {name!r}; known: {MODELS}")
            if values.shape != (n,):
                raise ValueError(f"predictions of {name!r} must have {n} rows")


@dataclass(frozen=True, slots=True)
class EnsembleWeights:
    """What the meta-learner learnt; ``method`` says which rule produced it."""

    weights: dict[str, float]
    intercept: float = 0.0
    slope: float = 1.0
    centre: float = 0.0  # the recalibration pivots around this logit (the base rate's)
    method: str = "blend"  # "blend" | "best_single" | "single" | "fallback"
    reason: str = ""
    spreads: dict[str, float] = field(default_factory=dict)  # holdout residual sd (logit)
    interval_scale: float = 1.0
    between_ad_sd: float = 0.5  # the account's spread of true logit CTRs (confidence's scale)
    base_rate: float = 0.01
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnsembleWeights:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})


def _loss_grad(
    eta: FloatArray, n: FloatArray, k: FloatArray, total: float
) -> tuple[float, FloatArray]:
    loss = float(-(k * log_expit(eta) + (n - k) * log_expit(-eta)).sum() / total)
    return loss, (n * expit(eta) - k) / total


def fit_convex(z: FloatArray, n: FloatArray, k: FloatArray) -> FloatArray:
    """Convex weights (rows of ``z``: logits of each predictor) minimising log-loss, through a
    softmax parametrisation (unconstrained L-BFGS; θ's first entry is pinned to 0)."""
    m = z.shape[1]
    if m == 1:
        return np.ones(1)
    total = float(n.sum())

    def objective(theta_free: FloatArray) -> tuple[float, FloatArray]:
        theta = np.concatenate(([0.0], theta_free))
        w = softmax(theta)
        eta = z @ w
        loss, d_eta = _loss_grad(eta, n, k, total)
        d_w = z.T @ d_eta
        d_theta = w * (d_w - float(w @ d_w))  # softmax Jacobian
        return loss, d_theta[1:]

    result = minimize(objective, np.zeros(m - 1), jac=True, method="L-BFGS-B")
    return np.asarray(softmax(np.concatenate(([0.0], result.x))), dtype=np.float64)


def fit_platt(
    eta: FloatArray, n: FloatArray, k: FloatArray, centre: float = 0.0
) -> tuple[float, float]:
    """Recalibration ``η' = c + a + b·(η − c)`` in logit space minimising log-loss (Platt scaling
    on aggregated rows, pivoting at ``c``, the base rate's logit, so ``a`` is a plain shift);
    ``a`` stays in [−3, 3] and ``b`` in [0.2, 5] so a tiny holdout cannot flip or explode it."""
    total = float(n.sum())
    x = eta - centre

    def objective(ab: FloatArray) -> tuple[float, FloatArray]:
        loss, d = _loss_grad(centre + ab[0] + ab[1] * x, n, k, total)
        return loss, np.array([d.sum(), (d * x).sum()])

    bounds = [(-3.0, 3.0), (0.2, 5.0)]
    result = minimize(objective, np.array([0.0, 1.0]), jac=True, method="L-BFGS-B", bounds=bounds)
    return float(result.x[0]), float(result.x[1])


def _excess_sd(resid: FloatArray, n: FloatArray, p: FloatArray) -> float:
    """Spread of residual logits beyond binomial noise (method of moments, weighted by n)."""
    noise = 1.0 / (n * p * (1.0 - p))
    w = n / n.sum()
    return math.sqrt(max(float((w * (resid**2 - noise)).sum()), 1e-4))


def between_ad_sd(impressions: Any, clicks: Any) -> float:
    """The spread of true logit CTRs across rows (observed spread minus binomial noise)."""
    n, k = np.asarray(impressions, np.float64), np.asarray(clicks, np.float64)
    y = (k + 0.5) / (n + 1.0)
    base = float(k.sum() / n.sum()) if n.sum() > 0 else 0.01
    return _excess_sd(logit(y) - logit(clip_ctr(base)), n, clip_ctr(np.full_like(y, base)))


def _fit_blend(
    z: FloatArray, n: FloatArray, k: FloatArray, centre: float
) -> tuple[FloatArray, float, float]:
    w = fit_convex(z, n, k)
    a, b = fit_platt(z @ w, n, k, centre)
    return w, a, b


def _folds(groups: NDArray[np.int64]) -> NDArray[np.bool_]:
    """Two folds by group: alternate sorted distinct groups (deterministic, balanced)."""
    distinct = np.unique(groups)
    first = set(distinct[::2].tolist())
    return np.array([g in first for g in groups.tolist()], dtype=np.bool_)


def learn_weights(
    holdout: Holdout, *, base_rate: float | None = None, min_rows: int = MIN_ROWS
) -> EnsembleWeights:
    """Weights, recalibration and spreads from a holdout, with the never-worse guard.

    ``base_rate`` is the training base rate for NE (default: the holdout's own)."""
    n, k = holdout.impressions, holdout.clicks
    base = float(base_rate) if base_rate is not None else float(k.sum() / max(n.sum(), 1.0))
    cases = _complete_cases(holdout, min_rows)
    if isinstance(cases, str):
        return EnsembleWeights({}, method="fallback", reason=cases, base_rate=base)
    fit = _score_members(holdout, *cases, base)
    best = fit.best
    best_sd = _member_sd(holdout, best, fit.rows, fit.spreads)
    best_scale = _interval_scale(
        fit.z[:, fit.names.index(best)], fit.n, fit.k, fit.p[best], best_sd
    )
    if len(fit.names) == 1:
        reason = f"only {best} answered on the holdout"
        return fit.result({best: 1.0}, "single", reason, interval_scale=best_scale)
    cv_loss, boot = _guard(fit)
    gain = f"[{boot.lower:.2e}, {boot.upper:.2e}]"
    if not (cv_loss < fit.best_loss and boot.upper < 0):
        reason = (
            f"the blend's cross-fitted log-loss {cv_loss:.6f} is not below {best}'s "
            f"{fit.best_loss:.6f} by more than bootstrap noise (95% interval of the difference "
            f"{gain}, must lie below 0): {best} alone is used"
        )
        weights = {m: float(m == best) for m in fit.names}
        return fit.result(weights, "best_single", reason, interval_scale=best_scale)
    reason = (
        f"the blend's cross-fitted log-loss {cv_loss:.6f} beats {best}'s {fit.best_loss:.6f} "
        f"(95% interval of the difference {gain}, below 0)"
    )
    return _blend(holdout, fit, reason)


def _complete_cases(holdout: Holdout, min_rows: int) -> tuple[list[str], NDArray[np.bool_]] | str:
    """The predictors that answered on at least half the rows and the rows all of them answered
    on; or why the holdout cannot weigh them."""
    n, k = holdout.impressions, holdout.clicks
    names = [m for m in MODELS if m in holdout.predictions]
    answered = {m: np.isfinite(holdout.predictions[m]) for m in names}
    names = [m for m in names if answered[m].mean() >= 0.5] if len(n) else []
    if not names:
        return "no predictor answered on the holdout"
    rows = np.logical_and.reduce([answered[m] for m in names])
    if rows.sum() < min_rows or k[rows].sum() < MIN_CLICKS:
        return (
            f"holdout too small: {int(rows.sum())} rows, {int(k[rows].sum())} clicks "
            f"(need {min_rows} rows and {MIN_CLICKS} clicks)"
        )
    return names, rows


@dataclass(slots=True)
class _MemberFit:
    """The holdout's complete cases as each usable predictor scored them."""

    names: list[str]
    rows: NDArray[np.bool_]
    n: FloatArray
    k: FloatArray
    groups: NDArray[np.int64]
    base: float
    p: dict[str, FloatArray]
    z: FloatArray  # the members' logits, one column each
    centre: float
    spreads: dict[str, float]
    best: str
    best_loss: float
    metrics: dict[str, Any]

    def result(
        self, weights: dict[str, float], method: str, reason: str, **kw: Any
    ) -> EnsembleWeights:
        return EnsembleWeights(
            weights,
            method=method,
            reason=reason,
            spreads=self.spreads,
            between_ad_sd=between_ad_sd(self.n, self.k),
            base_rate=self.base,
            metrics=self.metrics,
            **kw,
        )


def _score_members(
    holdout: Holdout, names: list[str], rows: NDArray[np.bool_], base: float
) -> _MemberFit:
    n, k, groups = holdout.impressions[rows], holdout.clicks[rows], holdout.groups[rows]
    p = {m: clip_ctr(holdout.predictions[m][rows]) for m in names}
    z = np.column_stack([logit(p[m]) for m in names])
    observed = logit((k + 0.5) / (n + 1.0))
    per_model = {m: measures(p[m], n, k, base) for m in names}
    best = min(names, key=lambda m: per_model[m]["log_loss"])
    spreads = {m: _excess_sd(observed - z[:, j], n, p[m]) for j, m in enumerate(names)}
    metrics: dict[str, Any] = {"rows": int(rows.sum()), "impressions": int(n.sum())}
    metrics.update(clicks=int(k.sum()), models=per_model, best_single=best)
    return _MemberFit(
        names, rows, n, k, groups, base, p, z, float(logit(clip_ctr(base))), spreads,
        best, float(per_model[best]["log_loss"]), metrics,
    )  # fmt: skip


def _guard(fit: _MemberFit) -> tuple[float, PairedDifference]:
    """The guard, cross-fitted: weights and recalibration fitted on one fold score the other.
    Returns the blend's cross-fitted log-loss and the paired bootstrap of (blend - best single);
    both go into the metrics."""
    n, k, z, centre = fit.n, fit.k, fit.z, fit.centre
    fold = _folds(fit.groups)
    eta_cv = z @ np.full(len(fit.names), 1.0 / len(fit.names))
    for side in (True, False):
        fit_on, score_on = fold != side, fold == side
        if fit_on.sum() >= 2 and k[fit_on].sum() > 0 and score_on.any():
            w_f, a_f, b_f = _fit_blend(z[fit_on], n[fit_on], k[fit_on], centre)
            eta_cv[score_on] = centre + a_f + b_f * (z[score_on] @ w_f - centre)
    p_cv = clip_ctr(expit(eta_cv))
    fit.metrics["ensemble_cv"] = measures(p_cv, n, k, fit.base)
    cv_loss = float(fit.metrics["ensemble_cv"]["log_loss"])
    boot = paired_bootstrap(p_cv, fit.p[fit.best], n, k, fit.groups, n_boot=BOOTSTRAP_RESAMPLES)
    fit.metrics["ensemble_vs_best"] = boot.as_dict()
    return cv_loss, boot


def _blend(holdout: Holdout, fit: _MemberFit, reason: str) -> EnsembleWeights:
    """The blend fitted on the whole holdout, its recalibration, and its interval scale from
    the mixture spread (members' spreads plus their disagreement)."""
    n, k, z, centre = fit.n, fit.k, fit.z, fit.centre
    w, a, b = _fit_blend(z, n, k, centre)
    eta = centre + a + b * (z @ w - centre)
    sd_members = np.column_stack([_member_sd(holdout, m, fit.rows, fit.spreads) for m in fit.names])
    mix = np.sqrt((w * (sd_members**2 + (z - (z @ w)[:, None]) ** 2)).sum(axis=1)) * b
    return fit.result(
        {m: float(x) for m, x in zip(fit.names, w, strict=True)},
        "blend",
        reason,
        intercept=a,
        slope=b,
        centre=centre,
        interval_scale=_interval_scale(eta, n, k, clip_ctr(expit(eta)), mix),
    )


def _member_sd(
    holdout: Holdout, name: str, rows: NDArray[np.bool_], spreads: Mapping[str, float]
) -> FloatArray:
    own = holdout.spreads.get(name)
    fallback = np.full(int(rows.sum()), spreads[name])
    if own is None:
        return fallback
    values = own[rows]
    return np.where(np.isfinite(values), values, fallback)


def _interval_scale(
    eta: FloatArray, n: FloatArray, k: FloatArray, p: FloatArray, sd: FloatArray
) -> float:
    """Factor s with E[(resid² − binomial noise) / (s·sd)²] = 1 on the holdout, in [0.5, 4];
    1 (not estimated) below ``MIN_SCALE_ROWS`` rows, where the moment is too noisy to trust."""
    if len(n) < MIN_SCALE_ROWS:
        return 1.0
    resid = logit((k + 0.5) / (n + 1.0)) - eta
    noise = 1.0 / (n * p * (1.0 - p))
    ratio = float(np.mean((resid**2 - noise) / np.maximum(sd, 1e-3) ** 2))
    return float(np.clip(math.sqrt(max(ratio, 0.0)), 0.5, 4.0))


@dataclass(frozen=True, slots=True)
class EnsemblePrediction:
    prediction: float
    lower: float
    upper: float
    sd_logit: float
    confidence: float
    models_used: tuple[str, ...]
    weights: dict[str, float]
    method: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "prediction": self.prediction,
            "interval": [self.lower, self.upper],
            "confidence": self.confidence,
            "models_used": list(self.models_used),
            "weights": self.weights,
            "method": self.method,
        }


def member_interval(pred: BasePrediction, sd: float, level_z: float = Z90) -> tuple[float, float]:
    z = float(logit(pred.ctr))
    return float(expit(z - level_z * sd)), float(expit(z + level_z * sd))


def combine(
    preds: Mapping[str, BasePrediction],
    learnt: EnsembleWeights,
    *,
    order: Sequence[str] = MODELS,
    level_z: float = Z90,
) -> EnsemblePrediction | None:
    """The ensemble's answer from the predictors that answered: learnt weights renormalised over
    them (the recalibration is kept). None when no predictor answered. A learnt weight of 0 (a
    collapsed guard) stays 0 unless every answering predictor has weight 0; then the first one
    in ``order`` that answered is used alone and the method says so."""
    present = [m for m in order if m in preds]
    if not present:
        return None
    raw = {m: learnt.weights.get(m, 0.0) for m in present}
    method, a, b = learnt.method, learnt.intercept, learnt.slope
    if sum(raw.values()) <= 0:
        raw = {m: float(m == present[0]) for m in present}
        method = f"single:{present[0]}" if learnt.method != "fallback" else learnt.method
        a, b = 0.0, 1.0
    total = sum(raw.values())
    w = {m: v / total for m, v in raw.items()}
    z = {m: float(logit(clip_ctr(preds[m].ctr))) for m in present}
    mean_z = sum(w[m] * z[m] for m in present)
    sd: dict[str, float] = {}
    for m in present:
        own = preds[m].sd_logit
        sd[m] = own if own is not None else learnt.spreads.get(m, learnt.between_ad_sd)
    var = sum(w[m] * (sd[m] ** 2 + (z[m] - mean_z) ** 2) for m in present)
    eta = learnt.centre + a + b * (mean_z - learnt.centre)
    spread = abs(b) * math.sqrt(var) * learnt.interval_scale
    prior_var = max(learnt.between_ad_sd, 1e-3) ** 2
    confidence = max(0.0, 1.0 - spread**2 / prior_var)
    return EnsemblePrediction(
        prediction=float(expit(eta)),
        lower=float(expit(eta - level_z * spread)),
        upper=float(expit(eta + level_z * spread)),
        sd_logit=spread,
        confidence=round(confidence, 4),
        models_used=tuple(m for m in present if w[m] > 0),
        weights={m: round(w[m], 6) for m in present},
        method=method,
    )


def combine_many(
    predictions: Mapping[str, FloatArray],
    spreads: Mapping[str, FloatArray],
    learnt: EnsembleWeights,
) -> tuple[FloatArray, FloatArray]:
    """Vectorised ``combine`` for many variants (NaN where a predictor did not answer): the
    ensemble CTR and its logit spread; NaN where no predictor with weight answered."""
    names = [m for m in MODELS if m in predictions]
    if not names:
        raise ValueError("no predictor given")
    p = np.column_stack([predictions[m] for m in names])
    ok = np.isfinite(p)
    raw = np.array([learnt.weights.get(m, 0.0) for m in names])
    w = np.where(ok, raw[None, :], 0.0)
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total > 0, w / np.where(total > 0, total, 1.0), 0.0)
    z = np.where(ok, logit(clip_ctr(np.where(ok, p, 0.5))), 0.0)
    mean_z = (w * z).sum(axis=1)
    default = np.array([learnt.spreads.get(m, learnt.between_ad_sd) for m in names])
    sd = np.column_stack([spreads.get(m, np.full(len(p), np.nan)) for m in names])
    sd = np.where(np.isfinite(sd), sd, default[None, :])
    var = (w * (sd**2 + (z - mean_z[:, None]) ** 2)).sum(axis=1)
    eta = learnt.centre + learnt.intercept + learnt.slope * (mean_z - learnt.centre)
    valid = total[:, 0] > 0
    out = np.where(valid, expit(eta), np.nan)
    spread = np.where(valid, abs(learnt.slope) * np.sqrt(var) * learnt.interval_scale, np.nan)
    return out, spread
