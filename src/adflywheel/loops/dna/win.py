"""Win probability: P(a creative with this DNA clears the account's winner threshold) (pure).

A logistic regression on the DNA vector, fitted by Newton's method with a Gaussian prior on the
coefficients centred on a prior model: global (centred on zero) ← niche (centred on global) ←
account (centred on niche, or global, or zero). With few ads the prior dominates; as the
account's history grows its own data takes over. Logistic rather than gradient-boosted trees
because the prior-centred hierarchy is exact here, and its per-gene contributions
β·(x − x̄) are exactly the SHAP values of a linear model, so "why" needs no approximation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from adflywheel.loops.dna.fingerprint import VECTOR_FIELDS, VECTOR_LENGTH

FloatArray = NDArray[np.float64]
DEFAULT_WINNER_CTR = 0.03  # the brief's winner: CTR >= 3% with enough evidence


@dataclass(frozen=True, slots=True)
class Example:
    vector: Sequence[float]
    impressions: int
    clicks: int
    winner: bool | None = None  # set for pooled data labelled by its own account's threshold


@dataclass(frozen=True, slots=True)
class WinModel:
    intercept: float
    coef: tuple[float, ...]
    mean: tuple[float, ...]  # training mean of each feature (the reference for contributions)
    threshold_ctr: float
    threshold_rule: str
    level: str  # "account", "niche" or "global"
    prior: str  # what the coefficients were shrunk toward
    n_ads: int
    n_winners: int

    def predict(self, vector: Sequence[float]) -> float:
        x = np.asarray(vector, float)
        z = self.intercept + float(np.dot(self.coef, x))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def contributions(self, vector: Sequence[float]) -> list[dict[str, float | str]]:
        """Per-gene logit contributions β·(x − x̄), one-hot levels summed into their gene."""
        x = np.asarray(vector, float)
        parts = np.asarray(self.coef) * (x - np.asarray(self.mean))
        by_gene: dict[str, float] = {}
        for name, value in zip(VECTOR_FIELDS, parts.tolist(), strict=True):
            gene = name.split("=", 1)[0]
            by_gene[gene] = by_gene.get(gene, 0.0) + value
        out: list[dict[str, float | str]] = [
            {"gene": g, "logit": round(v, 5)} for g, v in by_gene.items() if abs(v) > 1e-6
        ]
        out.sort(key=lambda c: -abs(float(c["logit"])))
        return out

    def baseline(self) -> float:
        """The probability for an average creative of the training data."""
        return self.predict(self.mean)


def winner_threshold(
    examples: Sequence[Example], fixed_ctr: float | None, min_winners: int = 3
) -> tuple[float, str]:
    """The CTR a winner must reach: ``fixed_ctr`` (default 3%) when at least ``min_winners`` ads
    clear it, else the account's upper quartile of ad CTRs; the rule used is returned too."""
    target = DEFAULT_WINNER_CTR if fixed_ctr is None else fixed_ctr
    ctrs = np.array([e.clicks / e.impressions for e in examples])
    if fixed_ctr is not None or int((ctrs >= target).sum()) >= min_winners:
        return target, f"ctr >= {target:.4f}"
    q = float(np.quantile(ctrs, 0.75))
    return q, f"account upper quartile (ctr >= {q:.4f}; fewer than {min_winners} ads reach 3%)"


def fit(
    examples: Sequence[Example],
    *,
    threshold_ctr: float,
    threshold_rule: str = "",
    prior: WinModel | None = None,
    strength: float = 2.0,
    level: str = "account",
) -> WinModel:
    """MAP logistic regression: −loglik + strength/2·‖β − β_prior‖² (the intercept gets a weak
    0.01 pull, since thresholds differ between accounts). Newton steps to convergence."""
    x = np.array([list(e.vector) for e in examples], float).reshape(-1, VECTOR_LENGTH)
    y = np.array(
        [
            e.winner if e.winner is not None else e.clicks / e.impressions >= threshold_ctr
            for e in examples
        ],
        float,
    )
    n, k = x.shape
    design = np.hstack([np.ones((n, 1)), x])
    centre = np.zeros(k + 1)
    if prior is not None:
        centre[1:] = prior.coef
        centre[0] = prior.intercept
    penalty = np.full(k + 1, strength)
    penalty[0] = 0.01
    beta = centre.copy()
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        grad = design.T @ (p - y) + penalty * (beta - centre)
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return WinModel(
        intercept=float(beta[0]),
        coef=tuple(float(b) for b in beta[1:]),
        mean=tuple(float(m) for m in (x.mean(axis=0) if n else np.zeros(k))),
        threshold_ctr=threshold_ctr,
        threshold_rule=threshold_rule,
        level=level,
        prior=prior.level if prior is not None else "none",
        n_ads=n,
        n_winners=int(y.sum()),
    )


def credible(examples: Sequence[Example], min_impressions: int) -> list[Example]:
    """Ads with enough impressions for their CTR to mean something."""
    return [e for e in examples if e.impressions >= min_impressions]


def fit_hierarchy(
    account: Sequence[Example],
    *,
    niche: Sequence[Example] = (),
    pooled: Sequence[Example] = (),
    fixed_ctr: float | None = None,
    min_impressions: int = 500,
    min_ads: int = 4,
) -> WinModel | None:
    """Global → niche → account, each shrunk toward the one before; None when the account has
    fewer than ``min_ads`` ads with ``min_impressions`` (there is no history to speak of)."""
    own = credible(account, min_impressions)
    if len(own) < min_ads:
        return None
    threshold, rule = winner_threshold(own, fixed_ctr)
    prior: WinModel | None = None
    for name, data in (("global", pooled), ("niche", niche)):
        usable = credible(data, min_impressions)
        if len(usable) >= min_ads:
            prior = fit(usable, threshold_ctr=threshold, prior=prior, level=name)
    return fit(own, threshold_ctr=threshold, threshold_rule=rule, prior=prior)
