"""Why ads win: per-gene effects on CTR (and CVR) from an account's history (pure).

Each gene level ("hook_type = question", "cuts_per_10s: high") is an indicator. All levels are
fitted at once, so a gene is not credited with what a correlated gene did (faces come with
testimonials): a random-effects meta-regression of each ad's log rate, weighted by 1 / (between-
ad variance + Poisson variance), because ads differ far more than binomial noise says and the ad,
not the impression, is the unit of evidence. Every effect has a N(0, τ²) prior with τ² estimated
from the data (empirical Bayes), which shrinks levels with few ads toward "no effect". Reported
lifts are against the account's average creative, with 95% intervals; levels are sorted by
evidence, |effect| / posterior sd. The unadjusted group lift is reported beside it (``raw_*``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adflywheel.loops.dna.fingerprint import BINARY, CATEGORICAL, NUMERIC

Z95 = 1.959964


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
    evidence: float  # |raw log lift| / se
    shrink: float  # |adjusted, shrunk effect| / |raw marginal effect|
    threshold: float | None = None  # the split of a numeric gene (its account median)
    coef: float = 0.0  # coefficient of the level's centred indicator (log scale)
    share: float = 0.0  # share of ads in the level

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


def _columns(
    used: Sequence[AdOutcome], medians: Mapping[str, float], min_ads: int
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """One indicator per gene level: every level of a categorical gene; "yes" of a binary
    gene; "high" (above the account median) of a numeric gene. Levels shared by every ad, or by
    fewer than ``min_ads``, carry no contrast and are left out."""
    keys: list[tuple[str, str]] = []
    cols: list[np.ndarray] = []
    for gene in (*CATEGORICAL, *BINARY, *NUMERIC):
        levels = [_level(gene, a.genes.get(gene), medians) for a in used]
        wanted = sorted({lv for lv in levels if lv is not None})
        if gene not in CATEGORICAL:
            wanted = [lv for lv in wanted if lv in ("yes", "high")]
        for level in wanted:
            x = np.array([lv == level for lv in levels], float)
            if min_ads <= x.sum() < len(used):
                keys.append((gene, level))
                cols.append(x)
    return keys, (np.column_stack(cols) if cols else np.zeros((len(used), 0)))


def _family(gene: str) -> str:
    """Effects share a prior spread within a family: the levels of categorical genes (hook
    type, aspect ratio), and the binary and numeric genes' "yes"/"high" levels. Two families
    of a dozen or more effects each keep the spread estimates stable."""
    return "categorical" if gene in CATEGORICAL else "numeric"


def _fit(
    y: np.ndarray, x: np.ndarray, noise: np.ndarray, sd_ad: float, families: list[str]
) -> tuple[Any, ...]:
    """Random-effects meta-regression of ad log rates on centred level indicators, with a
    N(0, τ_f²) prior on every effect of family f; τ_f² by EM, the between-ad variance by
    moments on the residuals, alternated to convergence."""
    k = x.shape[1]
    xc = x - x.mean(axis=0)
    names = sorted(set(families))
    member = np.array([[f == name for f in families] for name in names], bool)
    tau2 = np.full(len(names), 0.01)
    s2 = sd_ad**2
    beta, cov, intercept = np.zeros(k), np.eye(k) * 0.01, float(y.mean())
    for _ in range(40):
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


def gene_patterns(ads: Sequence[AdOutcome], metric: str = "ctr", min_ads: int = 1) -> Patterns:
    """Per-level effects on ``metric`` ("ctr": clicks per impression; "cvr": conversions per
    link click), adjusted for the other genes, sorted by evidence."""
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
    keys, x = _columns(used, medians, min_ads)
    sd_ad = _between_ad_sd(events, exposure)
    if not keys:
        return Patterns(
            metric, baseline, len(used), int(exposure.sum()), int(events.sum()), {}, sd_ad, (),
            medians,
        )  # fmt: skip
    # Ad log rates with a half-event continuity correction; Poisson noise 1/(events + 0.5).
    y = np.log((events + 0.5 * baseline * 100) / (exposure + 100))
    noise = 1.0 / (events + 0.5)
    beta, cov, taus, sd_ad, share = _fit(y, x, noise, sd_ad, [_family(g) for g, _ in keys])
    effects = []
    for j, (gene, level) in enumerate(keys):
        inside = x[:, j] > 0
        # The level against the account's average creative, c·β with c = e_j − shares over the
        # gene's indicators: identified even though a gene's level indicators are collinear.
        c = np.zeros(len(keys))
        for m, (other, _) in enumerate(keys):
            if other == gene:
                c[m] = (1.0 if m == j else 0.0) - float(share[m])
        effect, sd = float(c @ beta), math.sqrt(max(float(c @ cov @ c), 1e-12))
        scale = 1.0 - float(share[j])
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
                shrink=round(abs(effect) / abs(raw), 4) if abs(raw) > 1e-9 else 1.0,
                threshold=medians.get(gene),
                coef=float(beta[j]),
                share=float(share[j]),
            )
        )
    effects.sort(key=lambda e: (-e.evidence, e.gene, e.level))
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
    )


def contributions(patterns: Patterns, genes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What each of a creative's genes adds to its log rate against the account's average
    creative: β·(x − share) per level indicator, summed per gene. Additive (the SHAP values of
    the linear model): their sum is the creative's predicted log lift."""
    by_gene: dict[str, float] = {}
    levels: dict[str, str | None] = {}
    for e in patterns.effects:
        level = patterns.level_of(e.gene, genes.get(e.gene))
        if level is None:
            continue
        x = 1.0 if level == e.level else 0.0
        by_gene[e.gene] = by_gene.get(e.gene, 0.0) + e.coef * (x - e.share)
        levels[e.gene] = level
    ranked = sorted(by_gene.items(), key=lambda kv: -abs(kv[1]))
    return [
        {"gene": g, "level": levels[g], "log_lift": round(v, 5), "lift": round(math.expm1(v), 4)}
        for g, v in ranked
    ]
