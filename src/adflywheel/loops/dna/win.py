"""Win probability: P(a creative with this DNA clears the account's winner threshold) (pure).

A logistic regression on the DNA vector, fitted by Newton's method with a Gaussian prior on the
coefficients centred on a prior model: global (centred on zero) ← niche (centred on global) ←
account (centred on niche, or global, or zero). With few ads the prior dominates; as the
account's history grows its own data takes over. Logistic rather than gradient-boosted trees
because the prior-centred hierarchy is exact here, and its per-gene contributions
β·(x − x̄) are exactly the SHAP values of a linear model, so "why" needs no approximation.

Other accounts' rows are never needed: a niche's *published*, noised pattern (loop 3,
``loops/crosslearn``) becomes a prior model (``prior_model``) whose coefficients carry the
pattern's uncertainty as per-coefficient precision, so a thin account is answered from its niche
and a rich one from its own ads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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
    # Set on a prior model: how strongly a model fitted under it is pulled to each coefficient
    # (intercept first); None means the default ``strength``.
    precision: tuple[float, ...] | None = field(default=None, repr=False)
    # The Laplace approximation's posterior covariance of (intercept, coef...) at the fitted
    # coefficients: the inverse Hessian of the penalised log-likelihood. None on a prior model.
    covariance: tuple[tuple[float, ...], ...] | None = field(
        default=None, repr=False, compare=False
    )

    def predict(self, vector: Sequence[float]) -> float:
        x = np.asarray(vector, float)
        z = self.intercept + float(np.dot(self.coef, x))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def interval(self, vector: Sequence[float], z: float = 1.96) -> tuple[float, float] | None:
        """The probability's interval from the Laplace approximation (logit ± z·sd, mapped
        back), or None when the model carries no covariance."""
        if self.covariance is None:
            return None
        x = np.concatenate([[1.0], np.asarray(vector, float)])
        centre = self.intercept + float(np.dot(self.coef, x[1:]))
        sd = math.sqrt(max(float(x @ np.asarray(self.covariance) @ x), 0.0))
        low, high = (max(-30.0, min(30.0, centre + s * z * sd)) for s in (-1.0, 1.0))
        return 1.0 / (1.0 + math.exp(-low)), 1.0 / (1.0 + math.exp(-high))

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

    def prior_name(self) -> str:
        """How a model fitted under this one names it: its level, or a published prior's name."""
        return self.threshold_rule if self.precision is not None else self.level

    def baseline(self) -> float:
        """The probability for an average creative of the training data."""
        return self.predict(self.mean)


def winner_threshold(
    examples: Sequence[Example], fixed_ctr: float | None, min_winners: int = 3
) -> tuple[float, str] | None:
    """The CTR a winner must reach, and the rule used: ``fixed_ctr`` (default 3%) when it is
    given or when at least ``min_winners`` ads reach it; else a winner must be *strictly* above
    the account's upper quartile of ad CTRs, which must itself be above 0. None when there is no
    such quartile (e.g. no ad has a click): then nothing marks an ad out as better than typical.

    Strictness matters with ties: with zero clicks the quartile is 0 and "ctr >= quartile" would
    make every ad a winner (a constant ~1 probability); with tied CTRs it inflates winners the
    same way. The returned threshold is the next float above the quartile, so ``ctr >= threshold``
    (what ``fit`` tests) is exactly ``ctr > quartile``."""
    target = DEFAULT_WINNER_CTR if fixed_ctr is None else fixed_ctr
    ctrs = np.array([e.clicks / e.impressions for e in examples])
    if fixed_ctr is not None or int((ctrs >= target).sum()) >= min_winners:
        return target, f"ctr >= {target:.4f}"
    if ctrs.size == 0:
        return None
    q = float(np.quantile(ctrs, 0.75))
    if not q > 0.0:
        return None
    rule = f"account upper quartile (ctr > {q:.4f}; fewer than {min_winners} ads reach 3%)"
    return float(np.nextafter(q, math.inf)), rule


def labels(examples: Sequence[Example], threshold_ctr: float) -> list[bool]:
    """Winner or not, per example: its own label when pooled, else CTR >= the threshold."""
    return [
        e.winner if e.winner is not None else e.clicks / e.impressions >= threshold_ctr
        for e in examples
    ]


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
    y = np.array(labels(examples, threshold_ctr), float)
    n, k = x.shape
    design = np.hstack([np.ones((n, 1)), x])
    centre = np.zeros(k + 1)
    if prior is not None:
        centre[1:] = prior.coef
        centre[0] = prior.intercept
    penalty = np.full(k + 1, strength)
    penalty[0] = 0.01
    if prior is not None and prior.precision is not None:
        penalty = np.asarray(prior.precision, float)

    def objective(b: FloatArray) -> float:
        z = design @ b
        loglik = float(np.sum(y * z - np.logaddexp(0.0, z)))
        return -loglik + 0.5 * float(np.sum(penalty * (b - centre) ** 2))

    beta = centre.copy()
    current = objective(beta)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
        grad = design.T @ (p - y) + penalty * (beta - centre)
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        # Backtracking: a full Newton step can overshoot on (nearly) separable data.
        scale = 1.0
        while scale > 1e-6 and objective(beta - scale * step) > current + 1e-12:
            scale *= 0.5
        beta = beta - scale * step
        current = objective(beta)
        if float(np.abs(scale * step).max()) < 1e-8:
            break
    p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -30, 30)))
    hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
    covariance = np.linalg.pinv(hess)
    return WinModel(
        intercept=float(beta[0]),
        coef=tuple(float(b) for b in beta[1:]),
        mean=tuple(float(m) for m in (x.mean(axis=0) if n else np.zeros(k))),
        threshold_ctr=threshold_ctr,
        threshold_rule=threshold_rule,
        level=level,
        prior=prior.prior_name() if prior is not None else "none",
        n_ads=n,
        n_winners=int(y.sum()),
        covariance=tuple(tuple(float(c) for c in row) for row in covariance),
    )


def credible(examples: Sequence[Example], min_impressions: int) -> list[Example]:
    """Ads with enough impressions for their CTR to mean something."""
    return [e for e in examples if e.impressions >= min_impressions]


@dataclass(frozen=True, slots=True)
class PublishedPrior:
    """A niche's published gene pattern as the win model sees it (built by loop 3)."""

    name: str  # says which prior was used, in the answer
    level: str  # "niche" or "global"
    base_log_ctr: float
    base_log_sd: float
    effects: Mapping[str, tuple[float, float]]  # "gene=level" -> (log-lift mean, sd)
    ad_log_sd: float = 0.35  # spread of ads' log CTR around their prediction

    def upper_quartile_ctr(self) -> float:
        """The niche's winner threshold when the account has no say: its upper quartile."""
        return math.exp(self.base_log_ctr + 0.674 * self.ad_log_sd)


PROBIT_TO_LOGIT = 1.702  # Φ(z) ≈ σ(1.702·z)
MAX_PRIOR_PRECISION = 50.0


def prior_model(published: PublishedPrior, threshold_ctr: float) -> WinModel:
    """P(CTR >= threshold) under the published pattern, as a logistic model on the DNA vector:
    log CTR ~ N(base + Σ level effects, ad_log_sd²), so logit P ≈ a·(base + Σ effects − log thr)
    with a = 1.702 / ad_log_sd. One-hot categorical and binary fields get a·effect with
    precision 1 / (a·sd)²; numeric fields have no shared effect (centred on 0, default pull).
    Linearising a binary gene's "yes" lift against the average ad is an approximation."""
    a = PROBIT_TO_LOGIT / published.ad_log_sd
    coef, prec = [], []
    for name in VECTOR_FIELDS:
        key = name if "=" in name else f"{name}=yes"
        if key in published.effects:
            m, s = published.effects[key]
            coef.append(a * m)
            prec.append(min(MAX_PRIOR_PRECISION, 1.0 / max(a * s, 1e-6) ** 2))
        else:
            coef.append(0.0)
            prec.append(2.0)
    intercept = a * (published.base_log_ctr - math.log(threshold_ctr))
    intercept_prec = min(MAX_PRIOR_PRECISION, 1.0 / max(a * published.base_log_sd, 1e-6) ** 2)
    return WinModel(
        intercept=intercept,
        coef=tuple(coef),
        mean=tuple(0.0 for _ in VECTOR_FIELDS),
        threshold_ctr=threshold_ctr,
        threshold_rule=published.name,
        level=published.level,
        prior="none",
        n_ads=0,
        n_winners=0,
        precision=(intercept_prec, *prec),
    )


@dataclass(frozen=True, slots=True)
class Fitted:
    """``fit_hierarchy_explained``'s answer: the model, or None and why there is none; ``note``
    says what the model rests on when it is not the account's own winners and losers."""

    model: WinModel | None
    reason: str = ""
    note: str = ""


def _no_contrast(own: Sequence[Example], found: tuple[float, str] | None) -> str:
    """Why the account's credible ads cannot teach winners from the rest ("" when they can)."""
    n = len(own)
    if found is None:
        if all(e.clicks == 0 for e in own):
            return f"none of the {n} ads with enough impressions has a click"
        return (
            f"the upper quartile of CTR over the {n} ads with enough impressions is 0, so no "
            "ad stands out from the typical one"
        )
    threshold, rule = found
    winners = sum(labels(own, threshold))
    if winners == 0:
        return f"none of the {n} ads with enough impressions is a winner ({rule})"
    if winners == n:
        return f"all {n} ads with enough impressions are winners ({rule})"
    return ""


def fit_hierarchy(
    account: Sequence[Example],
    *,
    niche: Sequence[Example] = (),
    pooled: Sequence[Example] = (),
    fixed_ctr: float | None = None,
    min_impressions: int = 500,
    min_ads: int = 4,
    published: PublishedPrior | None = None,
) -> WinModel | None:
    """``fit_hierarchy_explained`` without the explanation."""
    return fit_hierarchy_explained(
        account,
        niche=niche,
        pooled=pooled,
        fixed_ctr=fixed_ctr,
        min_impressions=min_impressions,
        min_ads=min_ads,
        published=published,
    ).model


def fit_hierarchy_explained(
    account: Sequence[Example],
    *,
    niche: Sequence[Example] = (),
    pooled: Sequence[Example] = (),
    fixed_ctr: float | None = None,
    min_impressions: int = 500,
    min_ads: int = 4,
    published: PublishedPrior | None = None,
) -> Fitted:
    """Global → niche → account, each shrunk toward the one before. ``published`` (a niche's or
    the global published pattern) centres the account's model when given, and answers for an
    account with fewer than ``min_ads`` credible ads (level "niche"/"global", its own few ads
    included); without it such an account gets no model (there is no history to speak of).

    An account whose credible ads have no contrast (no winner, or all winners, or no valid
    threshold, e.g. zero clicks everywhere) cannot say what makes a winner: fitting it anyway
    gives a probability that is the same for every creative. Without ``published`` it gets no
    model and the reason; with it the published pattern answers (at the published threshold
    unless ``fixed_ctr`` is given), its coefficients shrunk toward the account's few outcomes,
    exactly as for a thin account. A prior level (niche, global) without contrast is skipped."""
    own = credible(account, min_impressions)
    if len(own) < min_ads and published is None:
        return Fitted(
            None,
            f"no history: {len(own)} ads with at least {min_impressions} impressions; "
            f"{min_ads} needed, and no published niche pattern to start from",
        )
    note = ""
    level = "account"
    found = winner_threshold(own, fixed_ctr) if len(own) >= min_ads else None
    problem = _no_contrast(own, found) if len(own) >= min_ads else ""
    if found is not None and not problem:
        threshold, rule = found
    else:
        if published is None:
            return Fitted(
                None,
                f"no usable history: {problem}; with no contrast between winners and the rest "
                "a win probability would be the same for every creative, and there is no "
                "published niche pattern to start from",
            )
        level = published.level
        note = problem
        if fixed_ctr is not None:
            threshold, rule = fixed_ctr, f"ctr >= {fixed_ctr:.4f}"
        else:
            threshold = published.upper_quartile_ctr()
            why = "thin account" if len(own) < min_ads else "the account's ads have no contrast"
            rule = f"{published.level} upper quartile (ctr >= {threshold:.4f}; {why})"
    prior: WinModel | None = None
    for name, data in (("global", pooled), ("niche", niche)):
        usable = credible(data, min_impressions)
        if len(usable) >= min_ads and 0 < sum(labels(usable, threshold)) < len(usable):
            prior = fit(usable, threshold_ctr=threshold, prior=prior, level=name)
    if published is not None:
        prior = prior_model(published, threshold)
    model = fit(own, threshold_ctr=threshold, threshold_rule=rule, prior=prior, level=level)
    return Fitted(model, "", note)
