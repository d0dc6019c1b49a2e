"""Allocation at any number of variants (issue #15, item 4): the allocator against a plain
Beta–Bernoulli Thompson allocator and uniform, at 5, 20, 80 and 200 variants.

The allocator is used as the stateless allocate endpoint uses it: each hour the caller sends every
variant's cumulative impressions and clicks (no discounting, no model prior) and its current
budget, and gets integer budgets that sum to the total (``allocate_many`` over the seeds' campaigns
at once, the same code path as ``allocate_campaign``), here with the service's Thompson settings
(``THOMPSON_SETTINGS``) and, in the same run, with the settings that reproduce the allocator
before issue #15 (``LEGACY``: floors, gate and change cap that do not scale with the number of
variants).

The market: each hour a fixed stream of 20,000 impressions is split by the shares (largest
remainder), each variant's clicks are Binomial(impressions, its true click rate), for 14 days
hourly (336 hours). True click rates are drawn once per seed, uniform on [0.2%, 0.7%] (a
retailer's catalogue: most products click about alike, a few clearly better or worse); the same
rates serve every allocator of a seed (paired). The reference draws 1,000 samples from
Beta(1 + clicks, 1 + non-clicks) per variant and gives each variant the share of samples in which
it is best: no floor, no gate, no cap. Figures: total clicks as a fraction of the reference's, the
mean over seeds with a paired 95% t-interval.

Run: ``python -m benchmarks.bench_many_variants [--quick]`` (quick: 2 seeds × 48 hours).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402
from scipy import stats  # noqa: E402

from adflywheel.loops.bandit import (  # noqa: E402
    AllocationSettings,
    CampaignEvidence,
    VariantEvidence,
    allocate_many,
)
from adflywheel.services.bandit.policies import THOMPSON_SETTINGS  # noqa: E402
from benchmarks._cli import print_figures  # noqa: E402
from benchmarks.publish import RESULTS, publish  # noqa: E402

IMPRESSIONS_PER_HOUR = 20_000
HOURS = 14 * 24
TOTAL_MINOR = 1_000_000  # the hourly budget split, large enough that rounding is invisible
CTR_RANGE = (0.002, 0.007)
VARIANT_COUNTS = (5, 20, 80, 200)
SEEDS = (0, 1, 2, 3, 4)

# The allocator before issue #15: every floor at floor_share (up to 1/n), a gated variant held
# at its current budget or the fair share however many are gated.
LEGACY = replace(THOMPSON_SETTINGS, max_floor_total=1.0, max_gated_share=1.0)


def true_rates(n_variants: int, seed: int) -> NDArray[np.float64]:
    return np.random.default_rng([seed, n_variants, 0]).uniform(*CTR_RANGE, size=n_variants)


def split(shares: NDArray[np.float64], stream: int) -> NDArray[np.int64]:
    """Largest-remainder split of ``stream`` impressions by each row's shares."""
    exact = shares / shares.sum(axis=1, keepdims=True) * stream
    base = np.floor(exact).astype(np.int64)
    missing = stream - base.sum(axis=1)
    order = np.argsort(-(exact - base), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :], axis=1)
    result: NDArray[np.int64] = base + (rank < missing[:, None])
    return result


def reference_shares(
    imps: NDArray[np.float64], clicks: NDArray[np.float64], rng: np.random.Generator, n_draws: int
) -> NDArray[np.float64]:
    """Plain Beta–Bernoulli Thompson: P(best) under Beta(1 + clicks, 1 + non-clicks)."""
    draws = rng.beta(1.0 + clicks, 1.0 + imps - clicks, size=(n_draws, *imps.shape))
    best = draws.argmax(axis=2)  # (draws, campaigns)
    n = imps.shape[1]
    counts = np.stack([np.bincount(best[:, c], minlength=n) for c in range(imps.shape[0])])
    shares: NDArray[np.float64] = counts / n_draws
    return shares


def allocator_shares(settings: AllocationSettings) -> Callable[..., NDArray[np.float64]]:
    def shares(
        imps: NDArray[np.float64],
        clicks: NDArray[np.float64],
        current: NDArray[np.int64] | None,
        rng: np.random.Generator,
    ) -> NDArray[np.float64]:
        campaigns = [
            CampaignEvidence(
                f"c{c}",
                tuple(
                    VariantEvidence(
                        f"v{v}",
                        float(imps[c, v]),
                        float(clicks[c, v]),
                        float(imps[c, v]),  # spend: one minor unit per impression
                        current_budget_minor=None if current is None else int(current[c, v]),
                    )
                    for v in range(imps.shape[1])
                ),
            )
            for c in range(imps.shape[0])
        ]
        result = allocate_many(campaigns, [TOTAL_MINOR] * len(campaigns), settings, rng)
        budgets = np.array([[v.budget_minor for v in a.variants] for a in result], dtype=np.int64)
        return budgets

    return shares


def simulate(
    policy: str,
    n_variants: int,
    seeds: Sequence[int],
    hours: int,
    settings: AllocationSettings | None = None,
) -> NDArray[np.float64]:
    """Total clicks per seed of one allocator: ``"reference"``, ``"uniform"`` or ``"allocator"``
    (with ``settings``). All seeds run together, one campaign each."""
    rates = np.stack([true_rates(n_variants, s) for s in seeds])
    shape = rates.shape
    imps = np.zeros(shape)
    clicks = np.zeros(shape)
    click_rng = np.random.default_rng([seeds[0], len(seeds), n_variants, 1])
    policy_rng = np.random.default_rng([seeds[0], len(seeds), n_variants, 2])
    current: NDArray[np.int64] | None = None
    allocate = allocator_shares(settings or THOMPSON_SETTINGS)
    for _ in range(hours):
        if policy == "uniform":
            weights = np.ones(shape)
        elif policy == "reference":
            weights = reference_shares(imps, clicks, policy_rng, THOMPSON_SETTINGS.n_draws)
        else:
            current = allocate(imps, clicks, current, policy_rng)
            weights = current.astype(np.float64)
        hour_imps = split(weights, IMPRESSIONS_PER_HOUR)
        hour_clicks = click_rng.binomial(hour_imps, rates)
        imps += hour_imps
        clicks += hour_clicks
    total: NDArray[np.float64] = clicks.sum(axis=1)
    return total


def ratio_summary(ratios: NDArray[np.float64]) -> str:
    """Mean of the per-seed ratios with a paired 95% t-interval."""
    mean = float(ratios.mean())
    if len(ratios) < 2:
        return f"{mean:.3f}"
    half = float(stats.t.ppf(0.975, len(ratios) - 1) * ratios.std(ddof=1) / np.sqrt(len(ratios)))
    return f"{mean:.3f} [{mean - half:.3f}, {mean + half:.3f}]"


def run(quick: bool = False) -> dict[str, float | int | str]:
    seeds = SEEDS[:2] if quick else SEEDS
    hours = 48 if quick else HOURS
    figures: dict[str, float | int | str] = {
        "seeds": len(seeds),
        "hours": hours,
        "impressions_per_hour": IMPRESSIONS_PER_HOUR,
        "ctr": f"uniform on [{CTR_RANGE[0]:.1%}, {CTR_RANGE[1]:.1%}]",
    }
    policies: dict[str, AllocationSettings | None] = {
        "legacy": LEGACY,
        "thompson": THOMPSON_SETTINGS,
        "uniform": None,
    }
    for n in VARIANT_COUNTS:
        t0 = time.perf_counter()
        reference = simulate("reference", n, seeds, hours)
        figures[f"n{n}_reference_clicks_mean"] = round(float(reference.mean()), 1)
        for name, settings in policies.items():
            kind = "uniform" if settings is None else "allocator"
            clicks = simulate(kind, n, seeds, hours, settings)
            figures[f"n{n}_{name}_over_reference"] = ratio_summary(clicks / reference)
        figures[f"n{n}_seconds"] = round(time.perf_counter() - t0, 1)
    return figures


def markdown(figures: dict[str, float | int | str]) -> str:
    """The table RESULTS.md shows: each allocator's clicks ÷ the reference's, per variant count."""
    lines = [
        "| variants | reference clicks (mean) | before (floor 2% each, gate per variant) | "
        "after (floors ≤ 5% in total, gate ≤ 50%) | uniform |",
        "|---:|---:|---|---|---|",
    ]
    for n in VARIANT_COUNTS:
        cells = [f"n{n}_{name}_over_reference" for name in ("legacy", "thompson", "uniform")]
        lines.append(
            f"| {n} | {float(figures[f'n{n}_reference_clicks_mean']):,.0f} | "
            + " | ".join(str(figures[c]) for c in cells)
            + " |"
        )
    return "\n".join(lines) + "\n"


def run_and_publish(quick: bool = False) -> dict[str, float | int | str]:
    """``run``; the full run's table also goes into RESULTS.md (between its markers)."""
    figures = run(quick)
    if not quick:
        written = publish({(RESULTS, "many-variants"): markdown(figures)})
        figures["published"] = ", ".join(k for k, ok in written.items() if ok) or "no markers"
    return figures


def main() -> None:
    print_figures(run_and_publish, __doc__, quick_help="2 seeds × 48 hours")


if __name__ == "__main__":
    main()
