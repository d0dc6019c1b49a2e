"""Benchmark of cross-account learning (loop 3) on the simulated market (synthetic data).

1. Cold start. A market of 21 accounts in one niche (2 campaigns x 6 ads each). Twenty
   incumbents run 14 days on even budgets, opt in, and contribute; their niche publishes one
   pattern (Laplace noise at ε per period, k = 5). Then the 21st account starts: its first 72
   hours in a fresh copy of the same seeded market (same hidden truth).
   * CTR prediction NE (normalised entropy: log loss / entropy of the evaluation CTR, He et al.
     2014) for its 12 first creatives, predicted at hour 0 (no own data) and at hour 24 (its own
     first day), scored on the clicks of hours [h, 72) under even budgets. "none" is what the
     service believes without cross-account priors: the allocator's default (1% worth 100
     impressions, pooled with the campaign's data); the priors are niche base CTR x gene lifts,
     scaled by the account's own observed/expected ratio, as a Beta prior updated by each ad.
   * Clicks per dollar over its first 72 hours with Thompson sampling (ThompsonPolicy, hourly),
     without and with the niche prior through ``ThompsonPolicy.prior_provider`` (the product's
     ``crosslearn_priors.NichePriors``: a prior only for ads that have not delivered yet, so it
     shapes the first allocation and then the ads' own evidence takes over); even budgets as
     the reference.
   Repeated over seeds and niches; medians reported. The incumbents' 14 days and the newcomer's
   72 hours come from the same seeded world (the simulator has no calendar of launches).
2. Privacy. Membership inference: an adversary who knows the other 19 contributions exactly and
   the target's contribution sees one publication (we even hand it the three noisy sums, more
   than the API shows) and runs the likelihood-ratio test "target in" vs "target out". Its
   advantage (max over thresholds of TPR - FPR) against the ε-DP bound (e^ε - 1)/(e^ε + 1).
   And a randomized check that nothing is ever published with fewer than k contributions.

Run: ``python -m benchmarks.bench_crosslearn [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np

from adflywheel.loops.crosslearn import (
    Contribution,
    NichePrior,
    NotPublishable,
    PrivacySettings,
    SeededLaplaceNotPrivate,
    account_ratio,
    contribution,
    predict_ctr,
    predict_log_ctr,
    publish,
)
from adflywheel.loops.dna import patterns
from adflywheel.loops.dna.fingerprint import dna_from_features
from adflywheel.services.bandit.budgets import CampaignState
from adflywheel.services.bandit.policies import ThompsonPolicy
from adflywheel.services.crosslearn.priors import NichePriors, NicheView
from adflywheel.sim.market import MarketConfig, SimulatedMarket
from adflywheel.store.queries import HourlySeries, VariantTotals

INCUMBENTS = 20
HISTORY_HOURS = 14 * 24
NEW_HOURS = 72
EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)
NOISELESS = 1e9  # "ε = ∞": the same pipeline without meaningful noise (reference only)
NICHE_CYCLE = ("fitness", "beauty", "finance", "ecommerce_fashion", "saas", "food")


def _config(seed: int, niche: str) -> MarketConfig:
    return MarketConfig(
        seed=seed,
        n_accounts=INCUMBENTS + 1,
        campaigns_per_account=2,
        variants_per_campaign=6,
        niches=(niche,),
        retention_hours=None,
    )


def _genes(market: SimulatedMarket, a: int) -> list[dict[str, Any]]:
    ads = market.platform(market.accounts()[a]).list_ads()
    return [dna_from_features(ad.observed_features, ad.creative.primary_text).genes for ad in ads]


def _totals(market: SimulatedMarket, sl: slice, hours: range) -> tuple[np.ndarray, ...]:
    imps = np.zeros(sl.stop - sl.start)
    clicks = np.zeros_like(imps)
    spend = np.zeros_like(imps)
    for h in hours:
        rec = market.history(h)
        assert rec is not None
        imps += rec.impressions[sl]
        clicks += rec.clicks[sl]
        spend += rec.spend_minor[sl]
    return imps, clicks, spend


def incumbent_contributions(seed: int, niche: str) -> list[Contribution]:
    """The 20 incumbents' clipped contributions after 14 days on even budgets."""
    market = SimulatedMarket(_config(seed, niche))
    market.run(HISTORY_HOURS)
    settings = PrivacySettings()
    out = []
    per = market.config.campaigns_per_account * market.config.variants_per_campaign
    for a in range(INCUMBENTS):
        sl = slice(a * per, (a + 1) * per)
        imps, clicks, _ = _totals(market, sl, range(HISTORY_HOURS))
        ads = [
            patterns.AdOutcome(g, int(i), int(c))
            for g, i, c in zip(_genes(market, a), imps, clicks, strict=True)
        ]
        mine = contribution(patterns.gene_patterns(ads), settings)
        assert mine is not None
        out.append(mine)
    return out


def _prior(contribs: list[Contribution], epsilon: float, rng: np.random.Generator) -> NichePrior:
    settings = PrivacySettings(epsilon_per_period=epsilon, epsilon_budget=epsilon)
    noise = SeededLaplaceNotPrivate(settings, rng)  # reproducible synthetic benchmark only
    return NichePrior.from_pattern(publish("niche", contribs, settings, noise))


def _ne(pred: np.ndarray, imps: np.ndarray, clicks: np.ndarray) -> float:
    p = np.clip(pred, 1e-6, 1 - 1e-6)
    loss = -float(np.sum(clicks * np.log(p) + (imps - clicks) * np.log1p(-p)))
    ctr = float(clicks.sum() / imps.sum())
    base = -float(imps.sum()) * (ctr * math.log(ctr) + (1 - ctr) * math.log1p(-ctr))
    return loss / base


def _predictions(
    prior: NichePrior | None,
    genes: list[dict[str, Any]],
    imps: np.ndarray,
    clicks: np.ndarray,
    campaign_of: np.ndarray,
) -> np.ndarray:
    """Every ad's CTR belief given the account's own data so far (``imps``, ``clicks``)."""
    out = np.zeros(len(genes))
    if prior is None:  # the allocator's own prior: 1% worth 100 impressions, pooled per campaign
        for c in np.unique(campaign_of):
            m = campaign_of == c
            rate0 = (clicks[m].sum() + 1.0) / (imps[m].sum() + 100.0)
            out[m] = (clicks[m] + rate0 * 100.0) / (imps[m] + 100.0)
        return out
    expected = sum(
        i * math.exp(predict_log_ctr(prior, g)[0]) for g, i in zip(genes, imps, strict=True)
    )
    ratio = account_ratio(prior, float(clicks.sum()), expected)
    for j, g in enumerate(genes):
        out[j] = predict_ctr(prior, g, impressions=imps[j], clicks=clicks[j], account_ratio=ratio)[
            0
        ]
    return out


def _newcomer_ne(
    seed: int, niche: str, priors: dict[str, NichePrior | None]
) -> dict[str, dict[str, float]]:
    market = SimulatedMarket(_config(seed, niche))
    market.run(NEW_HOURS)
    per = market.config.campaigns_per_account * market.config.variants_per_campaign
    sl = slice(INCUMBENTS * per, (INCUMBENTS + 1) * per)
    genes = _genes(market, INCUMBENTS)
    campaign_of = np.repeat(np.arange(market.config.campaigns_per_account), 6)
    out: dict[str, dict[str, float]] = {}
    for h in (0, 24):
        seen_i, seen_c, _ = _totals(market, sl, range(h))
        eval_i, eval_c, _ = _totals(market, sl, range(h, NEW_HOURS))
        out[f"hour_{h}"] = {
            name: _ne(_predictions(p, genes, seen_i, seen_c, campaign_of), eval_i, eval_c)
            for name, p in priors.items()
        }
    return out


def _state(market: SimulatedMarket, c: int, hours: int, budgets: np.ndarray) -> CampaignState:
    v = market.config.variants_per_campaign
    idx = range(c * v, (c + 1) * v)
    starts = [market.hour_start(h) for h in range(hours)]
    recs = [market.history(h) for h in range(hours)]
    variants, hourly = [], {}
    for i in idx:
        series = HourlySeries(
            starts,
            [int(r.impressions[i]) for r in recs if r is not None],
            [int(r.clicks[i]) for r in recs if r is not None],
            [int(r.spend_minor[i]) for r in recs if r is not None],
            [0] * hours,
            [0] * hours,
        )
        hourly[i] = series
        variants.append(
            VariantTotals(
                i, market.ad_ids[i], i, market.ad_set_ids[i], c, "ACTIVE", "ACTIVE", False,
                int(budgets[i]), sum(series.impressions), sum(series.clicks), 0,
                sum(series.spend_minor), 0, 0, 0,
            )
        )  # fmt: skip
    total = int(market.campaign_budget_totals()[c])
    return CampaignState(c, market.campaign_ids[c], "clicks_per_dollar", total, variants, hourly)


def _newcomer_clicks_per_dollar(
    seed: int, niche: str, prior: NichePrior | None, policy: str
) -> float:
    market = SimulatedMarket(_config(seed, niche))
    per = market.config.campaigns_per_account * market.config.variants_per_campaign
    first = INCUMBENTS * per
    sl = slice(first, first + per)
    genes = _genes(market, INCUMBENTS)
    campaigns = range(INCUMBENTS * 2, INCUMBENTS * 2 + 2)

    def market_view(campaign: CampaignState, hour: Any) -> NicheView:
        """What the store would give ``NichePriors`` for the newcomer: the niche's prior, its
        ads' genes, and its delivered ads' totals so far (for the account ratio)."""
        imps, clicks, _ = _totals(market, sl, range(market.hour_index))
        delivered = {
            first + j: (g, float(i), float(c))
            for j, (g, i, c) in enumerate(zip(genes, imps, clicks, strict=True))
            if i > 0
        }
        return NicheView(prior, {first + j: g for j, g in enumerate(genes)}, delivered)

    # The product's provider (services.crosslearn.priors): priors for young ads.
    provider = NichePriors(source=market_view)
    thompson = ThompsonPolicy(seed=seed, prior_provider=provider if prior is not None else None)
    for _ in range(NEW_HOURS):
        if policy == "thompson":
            hours = market.hour_index
            budgets = market.budgets()
            for c in campaigns:
                state = _state(market, c, hours, budgets)
                proposal = thompson.propose(state, market.current_hour)
                market.set_budgets_bulk(proposal.budgets)
        market.step()
    _, clicks, spend = _totals(market, sl, range(NEW_HOURS))
    return float(clicks.sum() / (spend.sum() / 100.0))


def cold_start(seeds: int) -> dict[str, Any]:
    names = ["none", *(f"eps_{e:g}" for e in EPSILONS), "noiseless"]
    ne: dict[str, dict[str, list[float]]] = {"hour_0": {}, "hour_24": {}}
    cpd: dict[str, list[float]] = {}
    started = time.perf_counter()
    for s in range(seeds):
        niche = NICHE_CYCLE[s % len(NICHE_CYCLE)]
        contribs = incumbent_contributions(s, niche)
        rng = np.random.default_rng([s, 31])
        priors: dict[str, NichePrior | None] = {"none": None}
        for e in EPSILONS:
            priors[f"eps_{e:g}"] = _prior(contribs, e, rng)
        priors["noiseless"] = _prior(contribs, NOISELESS, rng)
        for hour, values in _newcomer_ne(s, niche, priors).items():
            for name, value in values.items():
                ne[hour].setdefault(name, []).append(value)
        cpd.setdefault("even_budgets", []).append(
            _newcomer_clicks_per_dollar(s, niche, None, "uniform")
        )
        for name in names:
            value = _newcomer_clicks_per_dollar(s, niche, priors[name], "thompson")
            cpd.setdefault(f"thompson_{name}", []).append(value)

    def med(xs: list[float]) -> float:
        return round(float(np.median(xs)), 4)

    base = cpd["thompson_none"]
    return {
        "seeds": seeds,
        "niches": sorted({NICHE_CYCLE[s % len(NICHE_CYCLE)] for s in range(seeds)}),
        "ne_median": {h: {n: med(v) for n, v in by.items()} for h, by in ne.items()},
        "ne_prior_better_share": {
            h: {
                n: round(float(np.mean(np.array(v) < np.array(by["none"]))), 3)
                for n, v in by.items()
                if n != "none"
            }
            for h, by in ne.items()
        },
        "clicks_per_dollar_median": {n: med(v) for n, v in cpd.items()},
        "clicks_per_dollar_gain_vs_thompson_none_median": {
            n: round(float(np.median(np.array(v) / np.array(base) - 1.0)), 4)
            for n, v in cpd.items()
            if n != "thompson_none"
        },
        "clicks_per_dollar_gain_vs_thompson_none_iqr": {
            n: [
                round(float(q), 4)
                for q in np.quantile(np.array(v) / np.array(base) - 1.0, [0.25, 0.75])
            ]
            for n, v in cpd.items()
            if n != "thompson_none"
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def _sums(contribs: list[Contribution]) -> np.ndarray:
    return np.array(
        [len(contribs), sum(c.log_base for c in contribs), *np.sum([c.lifts for c in contribs], 0)]
    )


def membership(trials: int) -> dict[str, Any]:
    """Likelihood-ratio membership attack on one publication, per ε."""
    contribs = incumbent_contributions(0, "fitness")
    # The target: the incumbent whose contribution moves the sums most (the worst case).
    full = _sums(contribs)
    target = max(range(len(contribs)), key=lambda i: float(np.abs(_sums([contribs[i]])).sum()))
    without = _sums([c for i, c in enumerate(contribs) if i != target])
    out: dict[str, Any] = {"accounts": len(contribs), "trials_per_hypothesis": trials}
    rng = np.random.default_rng(2026)
    for eps in EPSILONS:
        settings = PrivacySettings(epsilon_per_period=eps, epsilon_budget=eps)
        b_count, b_base, b_lift = settings.scales
        scales = np.array([b_count, b_base, *([b_lift] * (full.size - 2))])

        y_in = full[None, :] + rng.laplace(0.0, scales, size=(trials, full.size))
        y_out = without[None, :] + rng.laplace(0.0, scales, size=(trials, full.size))
        # log LR of "in" vs "out" under Laplace noise: Σ (|y − out| − |y − in|) / b.
        inside = np.sum((np.abs(y_in - without) - np.abs(y_in - full)) / scales, axis=1)
        outside = np.sum((np.abs(y_out - without) - np.abs(y_out - full)) / scales, axis=1)
        thresholds = np.quantile(np.concatenate([inside, outside]), np.linspace(0, 1, 401))
        advantage = max(float(np.mean(inside > t) - np.mean(outside > t)) for t in thresholds)
        out[f"eps_{eps:g}"] = {
            "advantage": round(advantage, 4),
            "dp_bound": round((math.exp(eps) - 1) / (math.exp(eps) + 1), 4),
        }
    return out


def k_check(trials: int) -> dict[str, Any]:
    """Random numbers of contributors (0-12) and k in 2-8: count publications below k."""
    rng = np.random.default_rng(5)
    published = below_k = refused = 0
    for _ in range(trials):
        k = int(rng.integers(2, 9))
        n = int(rng.integers(0, 13))
        contribs = [Contribution(0.1, (0.0,) * 23, 8, False) for _ in range(n)]
        try:
            settings = PrivacySettings(k_min=k)
            publish("x", contribs, settings, SeededLaplaceNotPrivate(settings, rng))
        except NotPublishable:
            refused += 1
            continue
        published += 1
        below_k += n < k
    return {
        "trials": trials,
        "published": published,
        "refused": refused,
        "published_below_k": below_k,
    }


def run(quick: bool = False, seeds: int = 12) -> dict[str, Any]:
    return {
        "synthetic": True,
        "cold_start": cold_start(2 if quick else seeds),
        "membership": membership(2_000 if quick else 20_000),
        "k_anonymity": k_check(2_000 if quick else 20_000),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=12, help="cold-start repetitions")
    args = parser.parse_args()
    print(json.dumps(run(quick=args.quick, seeds=args.seeds), indent=2))
