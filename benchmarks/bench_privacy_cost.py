"""What cross-account learning's privacy settings cost a new creative's CTR prediction, on the
churn scenario (issue #15 item 3; synthetic data: the simulated market, not real ads).

World: ``scenarios.churn_spec`` (3 niches x 5 accounts x 2 campaigns, a new ad per campaign about
every 72 h, gene truth shared across a niche), run for its 21 days on **even budgets that never
change** (a fixed, non-learning policy), so the data do not depend on any loop. Every account is
opted in. As the service does (``services/crosslearn/service.py``), each account contributes at
the end of every weekly period (its "why ads win" patterns over its whole history so far,
clipped: ``contribution``) and the niche publishes that period (``publish``, Laplace noise from
the bench-only ``SeededLaplaceNotPrivate`` so runs repeat; ε per period split 0.2 / 0.3 / 0.5 as
``PrivacySettings`` does); a creative launched at hour L is predicted from the niche's latest
publication before L.

The new creatives are those launched from day ``WARM_DAYS`` on. At its launch hour, before it has
any data, each gets one CTR prediction from
* ``none``: the service's belief without cross-account priors, the allocator's default for a new
  variant: its campaign's pooled CTR so far with 1% worth 100 impressions
  (``AllocationSettings``; without the allocator's 72-hour decay of old evidence);
* the niche prior through the product's ``NichePriors`` provider (niche base CTR x gene lifts,
  scaled by the account's observed / expected clicks on its delivered ads), for each k in ``KS``
  and ε in ``EPSILONS`` (∞: scale 1e-9, no meaningful noise), ``DRAWS`` noise draws per cell (the
  same draws for every k: common random numbers). Fewer contributors than k: nothing is
  published and the prediction is ``none``'s (counted as "published" 0).
* "no privacy" is k = 1 without noise: the same as k = 2, ε = ∞ here (every pool has >= 4).
Two pools: ``niche`` (the service: all five accounts of the niche, the creative's own account
included through its older ads) and ``others`` (a newcomer's view: the four other accounts).

Scored over the creative's first ``SCORE_DAYS`` days (fewer if the run ends), per ad and day
(loop 6's unit; rows without impressions dropped), pooled over all new creatives of a seed: NE
(log loss / entropy of the evaluation CTR), loop 6's headline accuracy (1 - impression-weighted
relative error) and calibration (expected / observed clicks). ``hindsight`` predicts each ad's
own CTR over its scored days: the best a single number per ad could do (noise ceiling).

Run: ``python -m benchmarks.bench_privacy_cost [--quick] [--seeds N] [--draws R]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from adflywheel.loops.bandit.evidence import AllocationSettings
from adflywheel.loops.crosslearn import (
    Contribution,
    NichePrior,
    PrivacySettings,
    SeededLaplaceNotPrivate,
    contribution,
    publish,
)
from adflywheel.loops.dna import patterns
from adflywheel.loops.dna.fingerprint import dna_from_features
from adflywheel.loops.monitor import metrics
from adflywheel.services.bandit.budgets import CampaignState
from adflywheel.services.crosslearn.priors import NichePriors, NicheView
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.sim.scenarios import CHURN_NICHES, SCENARIOS, churn_spec
from adflywheel.store.queries import VariantTotals

WARM_DAYS = 7  # creatives launched from this day on are "new"; the first period closes here
SCORE_DAYS = 3  # each new creative is scored over its first 3 days (the 72 hours)
PERIOD_HOURS = PrivacySettings().period_hours  # weekly publications
KS = (2, 3, 4, 5, 6)
EPSILONS = (0.25, 0.5, 1.0, 2.0, 4.0, math.inf)
NOISELESS = 1e9  # ε = ∞: the same pipeline with noise of scale ~1e-9
DRAWS = 20
POOLS = ("niche", "others")
UNCLIPPED = PrivacySettings(lift_clip=100.0, lift_l1=1000.0, base_clip=100.0)
Genes = Mapping[str, Any]


def day_rows(launch: int, imps: np.ndarray, clicks: np.ndarray, days: int) -> list[tuple[int, int]]:
    """(impressions, clicks) of one ad per day from its launch hour (``imps``/``clicks``: its
    hourly series), for at most ``days`` days; days without impressions are dropped."""
    out = []
    for d in range(days):
        lo, hi = launch + 24 * d, min(launch + 24 * (d + 1), len(imps))
        if lo >= hi:
            break
        n, c = int(imps[lo:hi].sum()), int(clicks[lo:hi].sum())
        if n > 0:
            out.append((n, c))
    return out


def score(pred: Sequence[float], rows: Sequence[Sequence[tuple[int, int]]]) -> dict[str, float]:
    """NE, headline accuracy and calibration of one prediction per ad over its day rows."""
    p = np.array([pred[i] for i, r in enumerate(rows) for _ in r], float)
    n = np.array([x[0] for r in rows for x in r], float)
    c = np.array([x[1] for r in rows for x in r], float)
    p = np.clip(p, metrics.EPS, 1 - metrics.EPS)
    acc = metrics.accuracy(p, n, c)
    return {
        "ne": metrics.normalized_entropy(p, n, c, float(c.sum() / n.sum())),
        "accuracy": math.nan if acc is None else acc,
        "calibration": float(n @ p / c.sum()),
    }


def pooled_ctr(imps: float, clicks: float, settings: AllocationSettings) -> float:
    """The allocator's belief for a variant without a prior: its campaign's pooled CTR."""
    m = settings.default_prior_strength
    return (clicks + settings.default_ctr * m) / (imps + m)


def published_prior(
    niche: str, contribs: Sequence[Contribution], k: int, epsilon: float, key: Sequence[int]
) -> tuple[NichePrior | None, float]:
    """The prior a niche publishes from ``contribs`` at k and ε with the seeded noise ``key``
    (the same key gives the same noise whatever k); (None, nan) below k. Also the divisor
    the publication used (max of the noisy count and k), which is all k changes above k."""
    if len(contribs) < k:
        return None, math.nan
    eps = NOISELESS if math.isinf(epsilon) else epsilon
    settings = PrivacySettings(k_min=k, epsilon_per_period=eps, epsilon_budget=eps)
    noise = SeededLaplaceNotPrivate(settings, np.random.default_rng(list(key)))
    pattern = publish(niche, contribs, settings, noise)
    return NichePrior.from_pattern(pattern), max(pattern.noisy_count, float(k))


def market_config(seed: int, scale: float) -> MarketConfig:
    """The churn world of one seed with gene effects times ``scale``, keeping its whole history
    (evaluation code can rebuild its hidden truth from this with ``build_world``)."""
    spec = churn_spec(seed, "uniform", gene_effect_scale=scale)
    return dataclasses.replace(spec.market_config(), retention_hours=None)


@dataclasses.dataclass(slots=True)
class World:
    """One seed's 21 days on even budgets, read into arrays: hourly delivery per ad, each ad's
    genes, account and campaign, and the new creatives with their launch hours."""

    imps: np.ndarray  # (hours, ads)
    clicks: np.ndarray
    genes: list[Genes]
    account_of: np.ndarray
    campaign_of: np.ndarray
    new: list[tuple[int, int]]  # (ad, launch hour)
    start: datetime

    @classmethod
    def simulate(cls, seed: int, scale: float) -> World:
        spec = churn_spec(seed, "uniform", gene_effect_scale=scale)
        config = market_config(seed, scale)
        market = SimulatedMarket(config)
        hours = spec.days * 24
        market.run(hours)
        records = [market.history(h) for h in range(hours)]
        imps = np.array([r.impressions for r in records if r is not None])
        clicks = np.array([r.clicks for r in records if r is not None])
        index = {ad: i for i, ad in enumerate(market.ad_ids)}
        genes: list[Genes] = [{} for _ in market.ad_ids]
        for account in market.accounts():
            for ad in market.platform(account).list_ads():
                dna = dna_from_features(ad.observed_features, ad.creative.primary_text)
                genes[index[ad.external_id]] = dna.genes
        per = spec.campaigns_per_account * spec.variants_per_campaign
        ad_set_of = market.ad_set_of
        new = [
            (int(np.flatnonzero(ad_set_of == x.ad_set_index)[0]), x.at_hour)
            for x in config.launches
            if x.at_hour >= WARM_DAYS * 24
        ]
        account_of = np.arange(len(index)) // per
        return cls(imps, clicks, genes, account_of, market.campaign_of, new, config.start)

    def contributions(
        self, hour: int, settings: PrivacySettings = PrivacySettings()
    ) -> list[Contribution | None]:
        """Every account's contribution from its history before ``hour`` (clipped by
        ``settings``)."""
        n, c = self.imps[:hour].sum(0), self.clicks[:hour].sum(0)
        out = []
        for a in range(int(self.account_of.max()) + 1):
            ads = [
                patterns.AdOutcome(self.genes[i], int(n[i]), int(c[i]))
                for i in np.flatnonzero(self.account_of == a)
                if n[i] > 0
            ]
            out.append(contribution(patterns.gene_patterns(ads), settings))
        return out


def _niche_rate(world: World, prior: NichePrior, ad: int, launch: int) -> float:
    """The product's provider (``NichePriors``) asked for the new ad's prior at its launch."""
    n, c = world.imps[:launch].sum(0), world.clicks[:launch].sum(0)
    mine = np.flatnonzero((world.account_of == world.account_of[ad]) & (n > 0))
    delivered = {int(i): (world.genes[i], float(n[i]), float(c[i])) for i in mine if i != ad}
    view = NicheView(prior, {ad: world.genes[ad]}, delivered)
    totals = VariantTotals(
        ad, str(ad), ad, str(ad), 0, "ACTIVE", "ACTIVE", False, 0, 0, 0, 0, 0, 0, 0, 0
    )  # the new ad: no delivery yet
    state = CampaignState(int(world.campaign_of[ad]), "c", "clicks_per_dollar", 0, [totals])
    provider = NichePriors(source=lambda _c, _h: view)
    return provider(state, world.start)[ad].rate


def draw_predictions(
    world: World,
    contribs: Mapping[int, list[Contribution | None]],
    none: Sequence[float],
    pool: int,
    eps: tuple[int, float],
    noise: tuple[int, ...],
) -> tuple[dict[int, list[float]], dict[int, int]]:
    """One noise draw of one pool and ε: every k's predictions of the new creatives, and how
    many of them had a published prior (the others keep ``none``'s prediction)."""
    preds = {k: list(none) for k in KS}
    published = dict.fromkeys(KS, 0)
    cache: dict[tuple[int, ...], tuple[NichePrior | None, float]] = {}
    n_niches = len(CHURN_NICHES)
    for j, (ad, h) in enumerate(world.new):
        a, p = int(world.account_of[ad]), h // PERIOD_HOURS * PERIOD_HOURS
        niche = a % n_niches  # balanced niches: account a is in niches[a % 3]
        owner = -1 if POOLS[pool] == "niche" else a
        members = [
            x
            for b, x in enumerate(contribs[p])
            if b % n_niches == niche and b != owner and x is not None
        ]
        rates: dict[float, float] = {}
        for k in KS:
            key = (p, niche, owner, k)
            if key not in cache:
                seeded = (*noise, pool, p, niche, owner + 1, eps[0])  # the same for every k
                cache[key] = published_prior(CHURN_NICHES[niche], members, k, eps[1], seeded)
            prior, divisor = cache[key]
            if prior is None:
                continue
            if divisor not in rates:  # k changes nothing once the count is above it
                rates[divisor] = _niche_rate(world, prior, ad, h)
            preds[k][j] = rates[divisor]
            published[k] += 1
    return preds, published


def launch_rows(world: World) -> list[list[tuple[int, int]]]:
    """Every new creative's scored day rows, in ``world.new`` order."""
    return [day_rows(h, world.imps[:, ad], world.clicks[:, ad], SCORE_DAYS) for ad, h in world.new]


def none_rates(world: World) -> list[float]:
    """``none``'s prediction of every new creative: its campaign's pooled CTR at its launch."""
    settings = AllocationSettings()
    out = []
    for ad, h in world.new:
        same = world.campaign_of == world.campaign_of[ad]
        out.append(pooled_ctr(world.imps[:h, same].sum(), world.clicks[:h, same].sum(), settings))
    return out


def hindsight_rates(rows: Sequence[Sequence[tuple[int, int]]]) -> list[float]:
    """Each creative's own CTR over its scored days (the noise ceiling of one number per ad)."""
    return [sum(c for _, c in r) / max(1, sum(n for n, _ in r)) for r in rows]


def periods_of(world: World) -> list[int]:
    """The publication hours the new creatives are predicted from (the period they launch in)."""
    return sorted({h // PERIOD_HOURS * PERIOD_HOURS for _, h in world.new})


def measure(seed: int, scale: float, draws: int) -> dict[str, Any]:
    """Every predictor's scores on one seed: {"none"|"hindsight"|cell: [scores per draw]}."""
    world = World.simulate(seed, scale)
    rows = launch_rows(world)
    none = none_rates(world)
    hindsight = hindsight_rates(rows)
    out: dict[str, Any] = {"none": [score(none, rows)], "hindsight": [score(hindsight, rows)]}
    periods = periods_of(world)
    contribs = {p: world.contributions(p) for p in periods}
    for pool, name in enumerate(POOLS):
        for e_i, eps in enumerate(EPSILONS):
            for draw in range(1 if math.isinf(eps) else draws):
                noise = (seed, round(scale * 10), draw)
                preds, published = draw_predictions(world, contribs, none, pool, (e_i, eps), noise)
                for k in KS:
                    result = score(preds[k], rows) | {"published": published[k] / len(world.new)}
                    out.setdefault(f"{name}/k{k}/eps{eps:g}", []).append(result)
    # No privacy and no clipping either: one account's summary enters the niche's sums whole.
    whole = {p: world.contributions(p, UNCLIPPED) for p in periods}
    preds, _ = draw_predictions(
        world, whole, none, 0, (len(EPSILONS), math.inf), (seed, round(scale * 10))
    )
    out["niche/unclipped"] = [score(preds[KS[0]], rows)]
    out["new_creatives"] = len(world.new)
    out["scored_rows"] = sum(len(r) for r in rows)
    return out


def summarise(values: Sequence[float], ref: Sequence[float] | None = None) -> dict[str, float]:
    """Median and 5-95% interval of ``values`` (or of their differences to ``ref``, paired)."""
    x = np.asarray(values, float) - (0.0 if ref is None else np.asarray(ref, float))
    lo, med, hi = np.nanquantile(x, [0.05, 0.5, 0.95])
    return {"median": round(float(med), 4), "p5": round(float(lo), 4), "p95": round(float(hi), 4)}


def aggregate(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Per predictor: each metric's median [5%, 95%] over seeds x draws, and its difference to
    "no privacy" (``<pool>/k2/eps∞``, the pool's noiseless publication) paired by seed."""
    cells = [c for c in per_seed[0] if isinstance(per_seed[0][c], list)]
    out: dict[str, Any] = {}
    for cell in cells:
        pool = cell.split("/")[0] if "/" in cell else "niche"
        ref_cell = f"{pool}/k2/epsinf"
        row: dict[str, Any] = {}
        for m in ("ne", "accuracy", "calibration"):
            vals = [r[m] for s in per_seed for r in s[cell]]
            refs = [s[ref_cell][0][m] for s in per_seed for _ in s[cell]]
            row[m] = summarise(vals)
            row[f"{m}_vs_no_privacy"] = summarise(vals, refs)
        if "published" in per_seed[0][cell][0]:
            shares = [r["published"] for s in per_seed for r in s[cell]]
            row["published"] = round(float(np.mean(shares)), 3)
        out[cell] = row
    return out


def run(quick: bool = False, seeds: int = 10, draws: int = DRAWS) -> dict[str, Any]:
    started = time.process_time()
    twins = ("churn",) if quick else tuple(SCENARIOS)
    n_seeds, n_draws = (1, 2) if quick else (seeds, draws)
    out: dict[str, Any] = {"synthetic": True, "policy": "even budgets, never changed"}
    out |= {"seeds": n_seeds, "draws": n_draws, "warm_days": WARM_DAYS, "score_days": SCORE_DAYS}
    for twin in twins:
        per_seed = [measure(s, SCENARIOS[twin], n_draws) for s in range(n_seeds)]
        out[twin] = {
            "new_creatives_per_seed": per_seed[0]["new_creatives"],
            "scored_ad_days_per_seed": per_seed[0]["scored_rows"],
            "cells": aggregate(per_seed),
        }
    out["cpu_seconds"] = round(time.process_time() - started, 1)
    return out


def _fmt(x: Mapping[str, float], digits: int = 3) -> str:
    return f"{x['median']:.{digits}f} [{x['p5']:.{digits}f}, {x['p95']:.{digits}f}]"


NAMED = (
    ("none", "none (allocator's default: campaign's pooled CTR)"),
    ("niche/k2/epsinf", "niche pattern, no privacy (k = 1, no noise)"),
    ("niche/unclipped", "no privacy and no clipping"),
    ("niche/k5/eps1", "**defaults: k = 5, ε = 1**"),
    ("niche/k6/eps1", "k = 6 (> 5 accounts: nothing published)"),
    ("others/k2/epsinf", "others only, no privacy"),
    ("others/k4/eps1", "others only, k = 4, ε = 1"),
    ("others/k5/eps1", "others only, defaults (4 < k: nothing published)"),
    ("hindsight", "hindsight: each ad's own CTR (ceiling)"),
)


def markdown(result: Mapping[str, Any]) -> str:
    """The tables for RESULTS.md: named predictors per twin, then the k x ε grids (churn)."""
    lines = []
    for twin in (t for t in SCENARIOS if t in result):
        cells = result[twin]["cells"]
        lines += [
            f"**{twin}** (gene_effect_scale {SCENARIOS[twin]:g}; median [5%, 95%])",
            "",
            "| predictor | accuracy | Δ vs no privacy | NE | Δ vs no privacy | calibration |",
            "|---|---|---|---|---|---|",
        ]
        for cell, label in NAMED:
            c = cells[cell]
            lines.append(
                f"| {label} | {_fmt(c['accuracy'])} | {_fmt(c['accuracy_vs_no_privacy'])} | "
                f"{_fmt(c['ne'], 4)} | {_fmt(c['ne_vs_no_privacy'], 4)} | "
                f"{c['calibration']['median']:.3f} |"
            )
        lines.append("")
    for pool in POOLS:
        cells = result["churn"]["cells"]
        for metric, scale, unit in (("accuracy", 100, "points"), ("ne", 1000, "x 1000")):
            lines += [
                f"churn, pool `{pool}`: median Δ {metric} vs no privacy ({unit}; "
                "— = nothing published, the prediction is none's)",
                "",
                "| k \\ ε | "
                + " | ".join("∞" if math.isinf(e) else f"{e:g}" for e in EPSILONS)
                + " |",
                "|---|" + "---|" * len(EPSILONS),
            ]
            for k in KS:
                row = []
                for e in EPSILONS:
                    c = cells[f"{pool}/k{k}/eps{e:g}"]
                    d = c[f"{metric}_vs_no_privacy"]["median"] * scale
                    row.append("—" if c["published"] == 0 else f"{d:+.2f}")
                lines.append(f"| {k} | " + " | ".join(row) + " |")
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="churn only, 1 seed, 2 draws")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--draws", type=int, default=DRAWS)
    parser.add_argument("--markdown", metavar="JSON", help="print the tables of a saved result")
    args = parser.parse_args()
    if args.markdown:
        with open(args.markdown, encoding="utf-8") as saved:
            print(markdown(json.load(saved)))
    else:
        print(json.dumps(run(quick=args.quick, seeds=args.seeds, draws=args.draws), indent=2))
