"""How well a new creative's CTR could be predicted at launch, and what loop 3 can reach of
it, on the churn scenario (issue #15; synthetic data: the simulated market, not real ads).

``bench_privacy_cost`` found the niche pattern barely beats the campaign's pooled CTR even
without privacy. This benchmark says why, with the world's hidden truth (evaluation only).
The world, the new creatives, their scored days and the scores are ``bench_privacy_cost``'s
(even budgets, never changed; each new creative scored per ad and day over its first
``SCORE_DAYS`` days; loop 6's headline accuracy, NE and calibration).

1. **Variance shares.** A creative's true launch logit CTR is niche + account + genes + its own
   idiosyncratic factor. Within a campaign the first two are constant, so what a launch
   prediction has to explain splits into: *shared genes* (the hook type, aspect class and
   binary genes, the only levels loop 3 shares: ``SHARED_LEVELS``; with the face x testimonial
   interaction), *unshared numeric genes* (numeric slopes and curvature) and *idiosyncratic*.
   Each part's share is its covariance with the total over the total's variance (within
   campaigns, all ads of the world), so the three sum to 1.
2. **Launch-accuracy ladder.** Predictors of each new creative at its launch hour: ``none``
   (the campaign's pooled CTR), the niche pattern without privacy (the product's prior, as in
   ``bench_privacy_cost``), then predictors that read the truth: the campaign's pooled CTR
   times exp(part of the new ad - the campaign's impression-weighted average part over its
   delivered ads) for a part that is (a) the best pattern of shared levels (per niche, least
   squares of the true gene logit on the observed levels), (b) the same plus straight-line
   numeric genes (``fingerprint.vectorise``), (c) the true gene logit, (d) the true gene logit
   plus the ad's own factor; and ``hindsight`` (each ad's realised CTR over its scored days).
   Also the published no-privacy lifts against the true level effects (per niche and level,
   the last period): correlation and slope, clipped as published and without the clip.

Run: ``python -m benchmarks.bench_launch_ceiling [--quick] [--seeds N] [--markdown FILE]
[--json FILE]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from adflywheel.loops.crosslearn import (
    Contribution,
    PrivacySettings,
    SeededLaplaceNotPrivate,
    publish,
)
from adflywheel.loops.crosslearn.sharing import SHARED_LEVELS, level_key
from adflywheel.loops.dna.fingerprint import vectorise
from adflywheel.sim.market.genes import BINARY_GENES, NUMERIC_GENES
from adflywheel.sim.market.world import World as Truth
from adflywheel.sim.market.world import build_world
from adflywheel.sim.scenarios import CHURN_NICHES
from benchmarks.bench_privacy_cost import (
    EPSILONS,
    KS,
    NOISELESS,
    UNCLIPPED,
    World,
    draw_predictions,
    hindsight_rates,
    launch_rows,
    market_config,
    none_rates,
    periods_of,
    score,
    summarise,
)

PARTS = ("shared", "numeric", "idiosyncratic")
PART_LABELS = {
    "shared": "shared genes (hook, aspect, binary)",
    "numeric": "unshared numeric genes",
    "idiosyncratic": "idiosyncratic (the ad's own factor)",
}
LADDER = (
    ("none", "none: campaign's pooled CTR"),
    ("niche", "niche pattern, no privacy (loop 3's prior)"),
    ("shared_pattern", "best pattern of shared levels (true effects, least squares)"),
    ("shared_linear", "+ straight-line numeric genes"),
    ("all_genes", "all genes (true)"),
    ("all_genes_own", "all genes + the ad's own factor (true)"),
    ("hindsight", "hindsight: each ad's realised CTR"),
)
N_LEVELS = len(SHARED_LEVELS)  # vectorise's first columns are exactly the shared levels


def truth_parts(truth: Truth) -> dict[str, np.ndarray]:
    """Each ad's launch logit CTR beyond niche and account, in ``PARTS`` (they sum to it). The
    unshared part is the numeric genes' slopes and curvature, the binary genes' slopes aside;
    the shared part is the rest of the gene logit (hook, aspect, binaries, and the face x
    testimonial interaction of two shared levels)."""
    e, g = truth.effects, truth.genes
    z = g.standardised()
    slopes = (
        e.numeric_global + e.numeric_niche[truth.niche_of] + e.numeric_account[truth.account_of]
    )
    unshared = [c for c, name in enumerate(NUMERIC_GENES) if name not in BINARY_GENES]
    numeric = e.scale * ((slopes * z)[:, unshared].sum(1) - (e.curvature * z**2).sum(1))
    shared = e.ctr_logit(g, truth.niche_of, truth.account_of) - numeric
    return {"shared": shared, "numeric": numeric, "idiosyncratic": truth.variant_logit.copy()}


def within(x: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``x`` minus its group's mean."""
    out = np.asarray(x, float).copy()
    for g in np.unique(groups):
        m = groups == g
        out[m] -= out[m].mean()
    return out


def variance_shares(parts: Mapping[str, np.ndarray], groups: np.ndarray) -> dict[str, float]:
    """Each part's share of the within-group variance of their sum: cov(part, sum) / var(sum)
    (within groups), so the shares sum to 1 and a part constant in every group gets 0."""
    total = within(np.sum(list(parts.values()), axis=0), groups)
    var = float(total @ total)
    return {k: float(within(v, groups) @ total) / var for k, v in parts.items()}


def level_matrix(genes: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Every ad's observed genes as ``vectorise`` lays them out: the shared levels (0/1), then
    the numeric genes (standardised, clipped)."""
    return np.array([vectorise(g) for g in genes], float)


def best_fits(
    vectors: np.ndarray, target: np.ndarray, niche_of: np.ndarray
) -> dict[str, np.ndarray]:
    """Per niche, least squares of ``target`` on the shared levels, and on them plus the
    straight-line numeric genes: the best a pattern of each kind could say (in sample)."""
    out = {"shared_pattern": np.zeros(len(target)), "shared_linear": np.zeros(len(target))}
    for n in np.unique(niche_of):
        ads = np.flatnonzero(niche_of == n)
        ones = np.ones((len(ads), 1))
        for name, cols in (("shared_pattern", N_LEVELS), ("shared_linear", vectors.shape[1])):
            x = np.hstack([vectors[ads, :cols], ones])
            beta = np.linalg.lstsq(x, target[ads], rcond=None)[0]
            out[name][ads] = x @ beta
    return out


def relative_rates(world: World, none: Sequence[float], part: np.ndarray) -> list[float]:
    """The campaign's pooled CTR times exp(the new ad's ``part`` - the campaign's
    impression-weighted average of exp(part) over its ads delivered before the launch)."""
    out = []
    for j, (ad, h) in enumerate(world.new):
        seen = world.imps[:h].sum(0)
        delivered = (world.campaign_of == world.campaign_of[ad]) & (seen > 0)
        avg = math.log(np.average(np.exp(part[delivered]), weights=seen[delivered]))
        out.append(none[j] * math.exp(part[ad] - avg))
    return out


def true_level_effects(
    levels: np.ndarray, shared: np.ndarray
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The true effect of every observed shared level on ``shared`` (least squares on the
    levels), against the average creative as a published lift is: (level columns, effects, ads
    holding each level). Levels every ad or no ad holds are left out."""
    held = levels.sum(0)
    cols = [k for k in range(N_LEVELS) if 0 < held[k] < len(shared)]
    x = levels[:, cols]
    beta = np.linalg.lstsq(x - x.mean(0), shared - shared.mean(), rcond=None)[0]
    share = x.mean(0)
    gene = [SHARED_LEVELS[k].split("=")[0] for k in cols]
    effects = np.zeros(len(cols))
    for j, gj in enumerate(gene):
        if gj in ("hook_type", "aspect_ratio"):  # one level of a category against the mix
            contrast = np.array(
                [(m == j) - share[m] if gm == gj else 0.0 for m, gm in enumerate(gene)]
            )
        else:  # a binary gene: holding it against the mix of holding and not
            contrast = np.zeros(len(cols))
            contrast[j] = 1.0 - share[j]
        effects[j] = contrast @ beta
    return cols, effects, held[cols]


def _published(
    niche: str, contribs: Sequence[Contribution], base: PrivacySettings
) -> dict[str, float]:
    """A niche's noiseless publication's log-lifts by level (``base``'s clipping)."""
    settings = dataclasses.replace(
        base, k_min=2, epsilon_per_period=NOISELESS, epsilon_budget=NOISELESS
    )
    pattern = publish(
        niche, contribs, settings, SeededLaplaceNotPrivate(settings, np.random.default_rng([1]))
    )
    return {level_key(e.gene, e.level): e.log_lift for e in pattern.effects}


def lift_agreement(world: World, vectors: np.ndarray, shared: np.ndarray) -> dict[str, float]:
    """The no-privacy niche lifts published at the last period against the true level effects
    (pooled over niche x level): correlation, and slope weighted by the level's ads."""
    p = periods_of(world)[-1]
    seen = world.imps[:p].sum(0) > 0
    n_niches = len(CHURN_NICHES)
    out: dict[str, float] = {}
    for name, settings in (("clipped", PrivacySettings()), ("unclipped", UNCLIPPED)):
        contribs = world.contributions(p, settings)
        true, published, weight = [], [], []
        for n, niche in enumerate(CHURN_NICHES):
            members = [x for a, x in enumerate(contribs) if a % n_niches == n and x is not None]
            lifts = _published(niche, members, settings)
            ads = np.flatnonzero(seen & (world.account_of % n_niches == n))
            cols, effects, held = true_level_effects(vectors[ads, :N_LEVELS], shared[ads])
            true += list(effects)
            published += [lifts.get(SHARED_LEVELS[k], 0.0) for k in cols]
            weight += list(np.sqrt(held))
        t, y = np.array(true), np.array(published)
        out[f"corr_{name}"] = float(np.corrcoef(t, y)[0, 1])
        out[f"slope_{name}"] = float(np.polyfit(t, y, 1, w=np.array(weight))[0])
    return out


def truth_shares(seed: int, scale: float = 1.0) -> dict[str, float]:
    """Variance shares of one seed's world (only its truth is built: no simulation)."""
    truth = build_world(market_config(seed, scale))
    return variance_shares(truth_parts(truth), truth.campaign_of)


def measure(seed: int, scale: float = 1.0) -> dict[str, Any]:
    """One seed: the variance shares, every ladder predictor's scores, the lift agreement."""
    world = World.simulate(seed, scale)
    truth = build_world(market_config(seed, scale))
    parts = truth_parts(truth)
    genes = parts["shared"] + parts["numeric"]
    rows = launch_rows(world)
    none = none_rates(world)
    contribs = {p: world.contributions(p) for p in periods_of(world)}
    no_privacy = (len(EPSILONS) - 1, math.inf)  # bench_privacy_cost's niche/k2/epsinf cell
    niche, _ = draw_predictions(world, contribs, none, 0, no_privacy, (seed, round(scale * 10), 0))
    vectors = level_matrix(world.genes)
    fits = best_fits(vectors, genes, truth.niche_of)
    preds = {
        "none": none,
        "niche": niche[KS[0]],
        "shared_pattern": relative_rates(world, none, fits["shared_pattern"]),
        "shared_linear": relative_rates(world, none, fits["shared_linear"]),
        "all_genes": relative_rates(world, none, genes),
        "all_genes_own": relative_rates(world, none, genes + parts["idiosyncratic"]),
        "hindsight": hindsight_rates(rows),
    }
    return {
        "seed": seed,
        "shares": {k: round(v, 4) for k, v in variance_shares(parts, truth.campaign_of).items()},
        "null_shares": {k: round(v, 4) for k, v in truth_shares(seed, 0.0).items()},
        "ladder": {k: score(v, rows) for k, v in preds.items()},
        "lifts": lift_agreement(world, vectors, parts["shared"]),
        "new_creatives": len(world.new),
        "scored_rows": sum(len(r) for r in rows),
    }


def run(quick: bool = False, seeds: int = 10) -> dict[str, Any]:
    """Every seed's figures and their medians [5%, 95%]."""
    started, wall = time.process_time(), time.perf_counter()
    per_seed = [measure(s) for s in range(1 if quick else seeds)]
    ladder = {
        k: {
            m: summarise([s["ladder"][k][m] for s in per_seed])
            for m in ("accuracy", "ne", "calibration")
        }
        for k, _ in LADDER
    }
    return {
        "synthetic": True,
        "scenario": "churn (gene_effect_scale 1); even budgets, never changed",
        "seeds": len(per_seed),
        "per_seed": per_seed,
        "shares": {k: summarise([s["shares"][k] for s in per_seed]) for k in PARTS},
        "null_shares": {k: summarise([s["null_shares"][k] for s in per_seed]) for k in PARTS},
        "ladder": ladder,
        "lifts": {k: summarise([s["lifts"][k] for s in per_seed]) for k in per_seed[0]["lifts"]},
        "cpu_seconds": round(time.process_time() - started, 1),
        "wall_seconds": round(time.perf_counter() - wall, 1),
    }


def _fmt(x: Mapping[str, float], digits: int = 3) -> str:
    return f"{x['median']:.{digits}f} [{x['p5']:.{digits}f}, {x['p95']:.{digits}f}]"


def markdown(result: Mapping[str, Any]) -> str:
    """The two tables (synthetic data), and the lift agreement under the second."""
    n = result["seeds"]
    lines = [
        f"**Within-campaign variance shares of the launch logit CTR** (synthetic: the churn "
        f"scenario, {n} seeds; cov(part, total) / var(total), so a row sums to 1)",
        "",
        "| seed | " + " | ".join(PART_LABELS[k] for k in PARTS) + " |",
        "|---|" + "---|" * len(PARTS),
    ]
    for s in result["per_seed"]:
        lines.append(
            f"| {s['seed']} | " + " | ".join(f"{s['shares'][k]:.3f}" for k in PARTS) + " |"
        )
    for label, key in (("median", "shares"), ("null twin (scale 0), median", "null_shares")):
        row = " | ".join(f"{result[key][k]['median']:.3f}" for k in PARTS)
        lines.append(f"| **{label}** | {row} |")
    lines += [
        "",
        f"**Launch-accuracy ladder** (synthetic: the churn scenario, {n} seeds; each new "
        "creative's first 3 days, per ad and day; median [5%, 95%] over seeds)",
        "",
        "| predictor at launch | accuracy | NE | calibration |",
        "|---|---|---|---|",
    ]
    for key, label in LADDER:
        c = result["ladder"][key]
        lines.append(
            f"| {label} | {_fmt(c['accuracy'])} | {_fmt(c['ne'], 4)} | {_fmt(c['calibration'])} |"
        )
    lifts = result["lifts"]
    lines += [
        "",
        "Published no-privacy lifts vs true level effects (per niche and shared level, last "
        "period; median [5%, 95%] over seeds): "
        f"correlation {_fmt(lifts['corr_clipped'], 2)}, slope {_fmt(lifts['slope_clipped'], 2)}; "
        f"without the clip: correlation {_fmt(lifts['corr_unclipped'], 2)}, "
        f"slope {_fmt(lifts['slope_unclipped'], 2)}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 seed")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--markdown", metavar="FILE", help="also write the tables to FILE")
    parser.add_argument("--json", metavar="FILE", help="also write the raw result to FILE")
    args = parser.parse_args()
    result = run(quick=args.quick, seeds=args.seeds)
    tables = markdown(result)
    print(tables)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as out:
            out.write(tables + "\n")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(result, out, indent=2)
            out.write("\n")
