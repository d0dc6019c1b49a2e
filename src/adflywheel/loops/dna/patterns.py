"""Why ads win: per-gene effects on CTR (and CVR) from an account's history (pure).

All genes are fitted at once, so a gene is not credited with what a correlated gene did (faces
come with testimonials): a random-effects meta-regression of each ad's log rate, weighted by
1 / (between-ad variance + Poisson variance), because ads differ far more than binomial noise
says and the ad, not the impression, is the unit of evidence. Categorical genes enter as one
indicator per level; binary and numeric genes as one standardised column each (a slope per
account sd), so a numeric gene is not thrown away into two halves. Every effect has a N(0, τ²)
prior with τ² estimated from the data (empirical Bayes), which shrinks thin evidence toward "no
effect".

Two readings come out. **Levels** ("hook_type = question", "brightness: high"): lift against
the account's average creative with a 95% interval; ``evidence`` = |effect| / posterior sd, and
``assured`` = the size of effect the data is sure of, |effect| − 1.96 sd (the lower bound of a
95% interval, floored at 0). Levels are sorted by ``assured``: big and well-supported first,
so a tiny effect that 600 ads make certain does not bury a large one that 60 ads support.
**Genes** ("hook_type", "brightness"): sorted by their best level's ``assured``; beside it,
whether the gene matters at all, the posterior Wald χ² of all its effects jointly on as many
degrees of freedom as it has free effects, with the z of the same two-sided tail so genes with
12 levels and genes with one slope compare fairly. The unadjusted group lift is reported
beside each level (``raw_*``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtri_exp
from scipy.stats import chi2

from adflywheel.loops.dna.fingerprint import BINARY, CATEGORICAL, NUMERIC

Z95 = 1.959964
Z_CLIP = 3.0  # numeric genes are standardised and winsorised at ±3 account sds


@dataclass(frozen=True, slots=True)
class AdOutcome:
    """One ad's genes and its totals over the window."""

    genes: Mapping[str, Any]
    impressions: int
    clicks: int
    link_clicks: int = 0
    conversions: int = 0


@dataclass(frozen=True, slots=True)
class GeneEffect:
    gene: str
    level: str
    metric: str  # "ctr" or "cvr"
    n_ads: int
    impressions: int  # exposure: impressions for CTR, link clicks for CVR
    events: int
    rate: float
    lift: float  # shrunk, relative to the account baseline (0.18 = +18%)
    lift_low: float
    lift_high: float
    raw_lift: float
    raw_low: float
    raw_high: float
    se_log: float
    evidence: float  # |adjusted log effect| / its posterior sd
    assured: float  # the size of log effect the data is 97.5% sure of: |effect| − 1.96 sd, ≥ 0
    shrink: float  # |adjusted, shrunk effect| / |raw marginal effect|
    threshold: float | None = None  # the split of a numeric gene (its account median)
    coef: float = 0.0  # the column's coefficient (log scale; per account sd for slopes)
    share: float = 0.0  # share of ads in the level
    slope_per_sd: float | None = None  # binary and numeric genes: log-rate change per sd

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class GeneEvidence:
    """How strongly the history says a gene matters at all, and its strongest level."""

    gene: str
    df: int
    chi2: float  # posterior Wald statistic of the gene's effects jointly
    evidence: float  # the two-sided z with the same tail probability as chi2 on df
    log10_p: float
    assured: float  # the largest ``assured`` of its levels: what the ranking uses
    top_level: str
    top_lift: float
    top_low: float
    top_high: float

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class Patterns:
    metric: str
    baseline: float
    n_ads: int
    exposure: int
    events: int
    tau: dict[str, float]  # estimated spread of true effects per family of genes
    between_ad_sd: float
    effects: tuple[GeneEffect, ...]
    medians: dict[str, float]
    genes: tuple[GeneEvidence, ...] = ()
    # Binary and numeric genes: (mean, sd) of the raw values that standardise the fitted
    # column, and the column's mean (the average creative, after winsorising).
    scales: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def level_of(self, gene: str, value: Any) -> str | None:
        return _level(gene, value, self.medians)


def _level(gene: str, value: Any, medians: Mapping[str, float]) -> str | None:
    if value is None:
        return None
    if gene in CATEGORICAL:
        return str(value)
    if gene in BINARY:
        return "yes" if bool(value) else "no"
    median = medians.get(gene)
    if median is None:
        return None
    return "high" if float(value) > median else "low"


def _standardise(gene: str, value: Any, scale: tuple[float, ...]) -> float:
    """The fitted column's value: (x − mean) / sd, winsorised for numeric genes; 0 (the
    account mean) when the gene is missing."""
    if value is None:
        return 0.0
    x = (float(bool(value)) if gene in BINARY else float(value)) - scale[0]
    z = x / scale[1]
    return z if gene in BINARY else float(np.clip(z, -Z_CLIP, Z_CLIP))


def _log_ratio_var(events: np.ndarray, exposure: np.ndarray, floor_sd: float) -> float:
    """Variance of log(Σ events / Σ exposure) with ads as clusters, never below the binomial
    term plus ``floor_sd``² / n (an estimate from one or two ads cannot claim certainty)."""
    total_m, total_c = float(exposure.sum()), float(events.sum())
    n = events.size
    rate = (total_c + 0.5) / (total_m + 1.0)
    resid = events - rate * exposure
    robust = float((resid**2).sum()) / (total_m**2) * (n / (n - 1) if n > 1 else 1.0)
    floor = 1.0 / (total_c + 0.5) + floor_sd**2 / n
    return max(robust / rate**2, floor)


def _between_ad_sd(events: np.ndarray, exposure: np.ndarray) -> float:
    """Spread of true log rates across ads: observed spread minus Poisson noise (moments)."""
    keep = exposure > 0
    if keep.sum() < 3:
        return 0.3
    log_rate = np.log((events[keep] + 0.5) / (exposure[keep] + 1.0))
    noise = float(np.mean(1.0 / (events[keep] + 0.5)))
    return math.sqrt(max(0.01, float(log_rate.var(ddof=1)) - noise))


@dataclass(frozen=True, slots=True)
class _Design:
    keys: list[tuple[str, str]]  # (gene, level) of each column; "yes"/"high" for slopes
    x: np.ndarray  # the columns as fitted (indicators, standardised values)
    inside: np.ndarray  # membership of each column's reported level (bool)
    slope: list[bool]
    scales: dict[str, tuple[float, float, float]]


def _design(used: Sequence[AdOutcome], medians: Mapping[str, float], min_ads: int) -> _Design:
    """Every level of a categorical gene as an indicator; a binary or numeric gene as one
    standardised column, reported as its "yes" level or its "high" half (above the account
    median). Levels shared by every ad, or held by fewer than ``min_ads``, carry no contrast
    and are left out."""
    keys: list[tuple[str, str]] = []
    cols: list[np.ndarray] = []
    inside: list[np.ndarray] = []
    slope: list[bool] = []
    scales: dict[str, tuple[float, float, float]] = {}
    for gene in (*CATEGORICAL, *BINARY, *NUMERIC):
        levels = [_level(gene, a.genes.get(gene), medians) for a in used]
        if gene in CATEGORICAL:
            for level in sorted({lv for lv in levels if lv is not None}):
                x = np.array([lv == level for lv in levels], float)
                if min_ads <= x.sum() < len(used):
                    keys.append((gene, level))
                    cols.append(x)
                    inside.append(x > 0)
                    slope.append(False)
            continue
        level = "yes" if gene in BINARY else "high"
        member = np.array([lv == level for lv in levels], bool)
        if not min_ads <= member.sum() < len(used):
            continue
        raw = [a.genes.get(gene) for a in used]
        values = np.array(
            [float(bool(v)) if gene in BINARY else float(v) for v in raw if v is not None]
        )
        sd = float(values.std())
        if sd <= 0:
            continue
        col = np.array([_standardise(gene, v, (float(values.mean()), sd)) for v in raw])
        scales[gene] = (float(values.mean()), sd, float(col.mean()))
        keys.append((gene, level))
        cols.append(col)
        inside.append(member)
        slope.append(True)
    x = np.column_stack(cols) if cols else np.zeros((len(used), 0))
    member_matrix = np.column_stack(inside) if inside else np.zeros((len(used), 0), bool)
    return _Design(keys, x, member_matrix, slope, scales)


def _family(gene: str) -> str:
    """Effects share a prior spread within a family: the levels of categorical genes (hook
    type, aspect ratio), and the per-sd slopes of binary and numeric genes. Two families of a
    dozen or more effects each keep the spread estimates stable."""
    return "categorical" if gene in CATEGORICAL else "numeric"


def _fit(
    y: np.ndarray, x: np.ndarray, noise: np.ndarray, sd_ad: float, families: list[str]
) -> tuple[Any, ...]:
    """Random-effects meta-regression of ad log rates on centred columns, with a N(0, τ_f²)
    prior on every effect of family f; τ_f² by EM, the between-ad variance by moments on the
    residuals, alternated to convergence."""
    k = x.shape[1]
    xc = x - x.mean(axis=0)
    names = sorted(set(families))
    member = np.array([[f == name for f in families] for name in names], bool)
    tau2 = np.full(len(names), 0.01)
    s2 = sd_ad**2
    beta, cov, intercept = np.zeros(k), np.eye(k) * 0.01, float(y.mean())
    for _ in range(60):
        w = 1.0 / (s2 + noise)
        intercept = float(np.sum(w * (y - xc @ beta)) / w.sum())
        prior = member.T.astype(float) @ tau2
        prec = (xc * w[:, None]).T @ xc + np.diag(1.0 / prior)
        cov = np.linalg.inv(prec)
        beta = cov @ (xc * w[:, None]).T @ (y - intercept)
        second = beta**2 + np.diag(cov)
        tau2 = np.array([max(float(second[m].mean()), 1e-5) for m in member])
        resid = y - intercept - xc @ beta
        s2 = max(float(np.mean(resid**2 - noise)), 0.002)
    taus = {name: math.sqrt(t) for name, t in zip(names, tau2, strict=True)}
    return beta, cov, taus, math.sqrt(s2), x.mean(axis=0)


def _contrast(design: _Design, j: int, means: np.ndarray) -> np.ndarray:
    """The reported level's effect against the account's average creative as c·β. A
    categorical level: c = e_j − shares over the gene's indicators (identified although a
    gene's level indicators are collinear). A slope's "yes"/"high": the mean of the column
    inside the level minus its overall mean, times e_j."""
    gene = design.keys[j][0]
    c = np.zeros(len(design.keys))
    if design.slope[j]:
        c[j] = float(design.x[design.inside[:, j], j].mean()) - float(means[j])
        return c
    for m, (other, _) in enumerate(design.keys):
        if other == gene:
            c[m] = (1.0 if m == j else 0.0) - float(means[m])
    return c


def _gene_evidence(
    gene: str, rows: list[int], contrasts: np.ndarray, beta: np.ndarray, cov: np.ndarray,
    lifts: list[tuple[str, float, float, float]], assured: float,
) -> GeneEvidence:  # fmt: skip
    """Posterior Wald χ² of a gene's effects (its levels against the average creative, or its
    slope), on the rank of their covariance; the z-equivalent keeps far tails finite."""
    c = contrasts[rows]
    effect, v = c @ beta, c @ cov @ c.T
    vals, vecs = np.linalg.eigh(v)
    keep = vals > vals.max() * 1e-9
    df = int(keep.sum())
    proj = vecs[:, keep].T @ effect
    stat = float(np.sum(proj**2 / vals[keep]))
    log_p = float(chi2.logsf(stat, df))
    z = float(-ndtri_exp(log_p - math.log(2.0))) if log_p < 0 else 0.0
    top = max(lifts, key=lambda t: abs(math.log1p(t[1])))
    return GeneEvidence(
        gene=gene,
        df=df,
        chi2=round(stat, 3),
        evidence=round(max(z, 0.0), 3),
        log10_p=round(log_p / math.log(10.0), 3),
        assured=assured,
        top_level=top[0],
        top_lift=top[1],
        top_low=top[2],
        top_high=top[3],
    )


def gene_patterns(ads: Sequence[AdOutcome], metric: str = "ctr", min_ads: int = 1) -> Patterns:
    """Per-level effects on ``metric`` ("ctr": clicks per impression; "cvr": conversions per
    link click), adjusted for the other genes and sorted by ``assured`` (the lower 95% bound of
    the size of the effect), then ``evidence``; and per-gene evidence, genes sorted the same way
    by their best level."""
    if metric not in ("ctr", "cvr"):
        raise ValueError("metric must be 'ctr' or 'cvr'")
    used = [a for a in ads if (a.impressions if metric == "ctr" else a.link_clicks) > 0]
    exposure = np.array([a.impressions if metric == "ctr" else a.link_clicks for a in used], float)
    events = np.array([a.clicks if metric == "ctr" else a.conversions for a in used], float)
    if not used or events.sum() <= 0:
        return Patterns(metric, 0.0, len(used), int(exposure.sum()), 0, {}, 0.0, (), {})
    baseline = float(events.sum() / exposure.sum())
    medians: dict[str, float] = {}
    for gene in NUMERIC:
        values = [float(a.genes[gene]) for a in used if a.genes.get(gene) is not None]
        if len(values) >= 4 and max(values) > min(values):
            medians[gene] = float(np.median(values))
    design = _design(used, medians, min_ads)
    keys, x = design.keys, design.x
    sd_ad = _between_ad_sd(events, exposure)
    if not keys:
        return Patterns(
            metric, baseline, len(used), int(exposure.sum()), int(events.sum()), {}, sd_ad, (),
            medians,
        )  # fmt: skip
    # Ad log rates with 100 pseudo-impressions at the baseline rate; Poisson noise 1/(events+½).
    y = np.log((events + 0.5 * baseline * 100) / (exposure + 100))
    noise = 1.0 / (events + 0.5)
    beta, cov, taus, sd_ad, means = _fit(y, x, noise, sd_ad, [_family(g) for g, _ in keys])
    contrasts = np.array([_contrast(design, j, means) for j in range(len(keys))])
    effects = []
    for j, (gene, level) in enumerate(keys):
        inside = design.inside[:, j]
        c = contrasts[j]
        effect, sd = float(c @ beta), math.sqrt(max(float(c @ cov @ c), 1e-12))
        scale = 1.0 - float(inside.mean())
        v_in = _log_ratio_var(events[inside], exposure[inside], sd_ad)
        v_out = _log_ratio_var(events[~inside], exposure[~inside], sd_ad)
        raw_se = scale * math.sqrt(v_in + v_out)
        rate = (events[inside].sum() + 0.5 * baseline) / (exposure[inside].sum() + 0.5)
        raw = math.log(rate / baseline)
        effects.append(
            GeneEffect(
                gene=gene,
                level=level,
                metric=metric,
                n_ads=int(inside.sum()),
                impressions=int(exposure[inside].sum()),
                events=int(events[inside].sum()),
                rate=round(float(events[inside].sum() / exposure[inside].sum()), 6),
                lift=round(math.expm1(effect), 4),
                lift_low=round(math.expm1(effect - Z95 * sd), 4),
                lift_high=round(math.expm1(effect + Z95 * sd), 4),
                raw_lift=round(math.expm1(raw), 4),
                raw_low=round(math.expm1(raw - Z95 * raw_se), 4),
                raw_high=round(math.expm1(raw + Z95 * raw_se), 4),
                se_log=round(sd, 5),
                evidence=round(abs(effect) / sd, 3) if sd > 0 else 0.0,
                assured=round(max(abs(effect) - Z95 * sd, 0.0), 5),
                shrink=round(abs(effect) / abs(raw), 4) if abs(raw) > 1e-9 else 1.0,
                threshold=medians.get(gene),
                coef=float(beta[j]),
                share=float(inside.mean()),
                slope_per_sd=round(float(beta[j]), 5) if design.slope[j] else None,
            )
        )
    genes = []
    for gene in dict.fromkeys(g for g, _ in keys):
        rows = [j for j, (g, _) in enumerate(keys) if g == gene]
        lifts = [(keys[j][1], effects[j].lift, effects[j].lift_low, effects[j].lift_high)
                 for j in rows]  # fmt: skip
        assured = max(effects[j].assured for j in rows)
        genes.append(_gene_evidence(gene, rows, contrasts, beta, cov, lifts, assured))
    genes.sort(key=lambda g: (-g.assured, g.log10_p, g.gene))
    effects.sort(key=lambda e: (-e.assured, -e.evidence, e.gene, e.level))
    return Patterns(
        metric=metric,
        baseline=baseline,
        n_ads=len(used),
        exposure=int(exposure.sum()),
        events=int(events.sum()),
        tau=taus,
        between_ad_sd=sd_ad,
        effects=tuple(effects),
        medians=medians,
        genes=tuple(genes),
        scales=design.scales,
    )


def contributions(patterns: Patterns, genes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What each of a creative's genes adds to its log rate against the account's average
    creative: β·(x − x̄) per fitted column (a level indicator, or a standardised binary or
    numeric gene), summed per gene. Additive (the SHAP values of the linear model): their sum
    is the creative's predicted log lift."""
    by_gene: dict[str, float] = {}
    levels: dict[str, str | None] = {}
    for e in patterns.effects:
        value = genes.get(e.gene)
        level = patterns.level_of(e.gene, value)
        if level is None:
            continue
        if e.slope_per_sd is not None:
            scale = patterns.scales[e.gene]
            part = e.coef * (_standardise(e.gene, value, scale) - scale[2])
        else:
            part = e.coef * ((1.0 if level == e.level else 0.0) - e.share)
        by_gene[e.gene] = by_gene.get(e.gene, 0.0) + part
        levels[e.gene] = level
    ranked = sorted(by_gene.items(), key=lambda kv: -abs(kv[1]))
    return [
        {"gene": g, "level": levels[g], "log_lift": round(v, 5), "lift": round(math.expm1(v), 4)}
        for g, v in ranked
    ]
