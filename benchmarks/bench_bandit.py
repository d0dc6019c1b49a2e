"""Benchmark of the Thompson-sampling allocator (loop 2) on synthetic campaigns, one core.

Times ``allocate_many`` end to end (evidence objects in, integer budgets out) for 10,000
campaigns × 10 variants × 1,000 posterior draws, against, in the same run:

* the physical floor: numpy drawing the same 10,000 × 10 × 1,000 Beta samples with ``rng.beta``
  (chunked like the allocator, which cannot hold 800 MB of float64 draws at once);
* MABWiser's ``ThompsonSampling`` (fit on per-impression binary rewards, then P(best) counted
  from 1,000 ``predict_expectations`` samples per campaign). It handles one campaign per model,
  so it runs on a subsample of campaigns and is extrapolated linearly; the output says so.

Run: ``python -m benchmarks.bench_bandit [--quick]`` (set ``OMP_NUM_THREADS=1``; we default it).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from adflywheel.core.domain import Objective  # noqa: E402
from adflywheel.loops.bandit import (  # noqa: E402
    AllocationSettings,
    CampaignEvidence,
    VariantEvidence,
    allocate_many,
)
from adflywheel.loops.bandit.posterior import Layout, pack  # noqa: E402
from benchmarks._cli import print_figures  # noqa: E402


def _seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_campaigns(
    n_campaigns: int, n_variants: int, objective: Objective, seed: int = 0
) -> tuple[list[CampaignEvidence], list[int]]:
    """Synthetic evidence: 1k–50k impressions per variant, CTR 0.5–3%, CPM $5–15, 5% CVR."""
    rng = np.random.default_rng(seed)
    shape = (n_campaigns, n_variants)
    imps = rng.integers(1_000, 50_000, size=shape)
    clicks = rng.binomial(imps, rng.uniform(0.005, 0.03, size=shape))
    spend = np.rint(imps * rng.uniform(0.5, 1.5, size=shape)).astype(np.int64)
    convs = rng.binomial(clicks, 0.05)
    revenue = convs * rng.integers(2_000, 8_000, size=shape)
    current = rng.integers(1_000, 5_000, size=shape)
    campaigns = [
        CampaignEvidence(
            f"c{c}",
            tuple(
                VariantEvidence(
                    f"c{c}v{v}",
                    int(imps[c, v]),
                    int(clicks[c, v]),
                    int(spend[c, v]),
                    int(convs[c, v]),
                    int(revenue[c, v]),
                    current_budget_minor=int(current[c, v]),
                )
                for v in range(n_variants)
            ),
            objective,
        )
        for c in range(n_campaigns)
    ]
    return campaigns, [int(x) for x in current.sum(axis=1)]


def beta_floor(a: np.ndarray, b: np.ndarray, n_draws: int, chunk_elements: int) -> None:
    """Just the Beta draws, chunked the way the allocator chunks: nothing a sampler can skip."""
    rng = np.random.default_rng(1)
    per_chunk = max(1, chunk_elements // a.size)
    done = 0
    while done < n_draws:
        n = min(per_chunk, n_draws - done)
        rng.beta(a, b, size=(n, *a.shape))
        done += n


def gamma_floor(a: np.ndarray, n_draws: int, chunk_elements: int) -> None:
    """One float64 Gamma draw per cell: the floor of the per-dollar objectives' single Gamma."""
    rng = np.random.default_rng(2)
    per_chunk = max(1, chunk_elements // a.size)
    done = 0
    while done < n_draws:
        n = min(per_chunk, n_draws - done)
        rng.standard_gamma(a, size=(n, *a.shape))
        done += n


def mabwiser_seconds(campaigns: list[CampaignEvidence], n_draws: int) -> tuple[float, float]:
    """(fit seconds, P(best) seconds) of MABWiser Thompson sampling over ``campaigns``."""
    from mabwiser.mab import MAB, LearningPolicy

    fit_s = pbest_s = 0.0
    for i, campaign in enumerate(campaigns):
        arms = list(range(len(campaign.variants)))  # integer arms: MABWiser's fastest case
        imps = np.array([int(v.impressions) for v in campaign.variants])
        clicks = np.array([int(v.clicks) for v in campaign.variants])
        decisions = np.repeat(np.array(arms), imps)
        rewards = np.concatenate(
            [np.r_[np.ones(c), np.zeros(n - c)] for n, c in zip(imps, clicks, strict=True)]
        )
        t0 = time.perf_counter()
        mab = MAB(arms, LearningPolicy.ThompsonSampling(), seed=i)
        mab.fit(decisions, rewards)
        t1 = time.perf_counter()
        samples = mab.predict_expectations(np.zeros((n_draws, 1)))
        best = np.array([[s[a] for a in arms] for s in samples]).argmax(axis=1)
        np.bincount(best, minlength=len(arms)) / n_draws
        t2 = time.perf_counter()
        fit_s += t1 - t0
        pbest_s += t2 - t1
    return fit_s, pbest_s


def run(quick: bool = False) -> dict[str, float | int | str]:
    """Figures for the allocator; ``quick`` uses 1,000 campaigns and a smaller MABWiser sample."""
    n_campaigns = 1_000 if quick else 10_000
    n_variants, n_draws = 10, 1_000
    repeats = 3
    n_mab = 10 if quick else 100
    settings = AllocationSettings(n_draws=n_draws)

    t0 = time.perf_counter()
    ctr_campaigns, totals = make_campaigns(n_campaigns, n_variants, Objective.CTR)
    conv_campaigns, _ = make_campaigns(n_campaigns, n_variants, Objective.CONVERSIONS_PER_DOLLAR)
    build_s = time.perf_counter() - t0
    post = pack(Layout.of(ctr_campaigns), Objective.CTR, settings)
    conv_post = pack(Layout.of(conv_campaigns), Objective.CONVERSIONS_PER_DOLLAR, settings)

    floor_s, gamma_s, ctr_s, conv_s = [], [], [], []
    chunk = settings.chunk_elements
    for rep in range(repeats):  # interleaved, so that machine noise hits all alike
        rng = np.random.default_rng(rep)
        floor_s.append(_seconds(lambda: beta_floor(post.a, post.b, n_draws, chunk)))
        gamma_s.append(_seconds(lambda: gamma_floor(conv_post.a, n_draws, chunk)))
        ctr_s.append(_seconds(lambda: allocate_many(ctr_campaigns, totals, settings, rng)))  # noqa: B023
        conv_s.append(_seconds(lambda: allocate_many(conv_campaigns, totals, settings, rng)))  # noqa: B023
    floor, gamma, ctr, conv = (statistics.median(x) for x in (floor_s, gamma_s, ctr_s, conv_s))

    fit_s, pbest_s = mabwiser_seconds(ctr_campaigns[:n_mab], n_draws)
    scale = n_campaigns / n_mab
    mab_total = (fit_s + pbest_s) * scale
    return {
        "campaigns": n_campaigns,
        "variants_per_campaign": n_variants,
        "draws": n_draws,
        "repeats": repeats,
        "build_evidence_s": round(build_s, 3),
        "numpy_beta_floor_median_s": round(floor, 3),
        "allocate_ctr_median_s": round(ctr, 3),
        "allocate_ctr_over_floor": round(ctr / floor, 3),
        "allocate_conversions_per_dollar_median_s": round(conv, 3),
        "allocate_conversions_per_dollar_over_floor": round(conv / floor, 3),
        "numpy_gamma_floor_median_s": round(gamma, 3),
        "allocate_conversions_per_dollar_over_gamma_floor": round(conv / gamma, 3),
        "mabwiser_sampled_campaigns": n_mab,
        "mabwiser_note": f"timed on {n_mab} campaigns, extrapolated ×{scale:g}",
        "mabwiser_fit_extrapolated_s": round(fit_s * scale, 2),
        "mabwiser_pbest_extrapolated_s": round(pbest_s * scale, 2),
        "mabwiser_total_extrapolated_s": round(mab_total, 2),
        "mabwiser_total_over_allocate_ctr": round(mab_total / ctr, 1),
        "mabwiser_pbest_only_over_allocate_ctr": round(pbest_s * scale / ctr, 1),
    }


def main() -> None:
    print_figures(run, __doc__, quick_help="1,000 campaigns, 10 for MABWiser")


if __name__ == "__main__":
    main()
