"""Accounts as advertisers build them (issue #16): Meta's three budget structures mixed in one
account, through the service's own hourly cycle.

**Synthetic data**: the simulated market with its three structures (docs/simulated-market.md,
"Budget structures"): per account, campaigns cycle through one ad per ad set (ABO), three ads
sharing each ad set's budget, and a campaign budget (CBO) over ad sets of two ads each. Meta's
own split of a shared budget is the market's fixed assumption, not tuned to the service. The
learning phase is on and every account runs today's safe defaults on autopilot.

Scenario, fixed before measuring: one account, six campaigns of six ads (two of each
structure), 14 days, 5 seeds. Half-way through, the advertiser pauses the first ad set of the
first ABO campaign and of the first multi-ad campaign (its budget stays on it, as on Meta).

Runs, paired by seed: ``uniform`` (each campaign's total split evenly over its active ad sets,
through the service; it moves no ad's status and promotes nothing) and ``loops=2,7`` (Thompson
with the clear-loser pausing, and the promoter). Figures per structure: clicks per dollar of
the managed run against uniform (paired ratio, mean with a t-interval over seeds); campaign-
hours by outcome and reason; pauses the service made and the false ones (an ad paused that was
truly not worse than its best active sibling that hour); ads the advertiser paused that the
service re-activated (must be 0); and for the campaigns whose ad set the advertiser paused, the
spend of the last three days against the three days before the pause (the issue saw 0.23).

Writes ``benchmarks/out/structures/{runs.json,table.md}``. ``--days``/``--seeds`` make it
smaller; ``--quick`` is 2 days × 1 seed. Two worker processes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from adflywheel.core.domain import per_dollar
from adflywheel.sim.harness import SimulationSpec, run_policy
from adflywheel.sim.market import AdvertiserPause, SimulatedMarket

OUT = Path(__file__).parent / "out" / "structures"
STRUCTURES = ("ad_set_budgets", "ad_set_budgets_multi_ad", "campaign_budget")
POLICIES = ("uniform", "loops=2,7")
CAMPAIGNS, ADS = 6, 6


def _spec(seed: int, days: int, policy: str, pauses: tuple[AdvertiserPause, ...]) -> SimulationSpec:
    return SimulationSpec(
        days=days,
        seed=seed,
        policy=policy,
        accounts=1,
        campaigns_per_account=CAMPAIGNS,
        variants_per_campaign=ADS,
        structures=STRUCTURES,
        ads_per_ad_set=3,
        campaign_budget_ads_per_ad_set=2,
        guardrails="safe",
        advertiser_pauses=pauses,
        record_truth=True,
    )


def advertiser_pauses(seed: int, days: int) -> tuple[tuple[AdvertiserPause, ...], list[int]]:
    """The first ad set of the first ABO and of the first multi-ad campaign, paused half-way;
    and those campaigns' indices."""
    market = SimulatedMarket(_spec(seed, days, "uniform", ()).market_config())
    structures = [market.structure_of(c) for c in range(CAMPAIGNS)]
    chosen = [structures.index("ad_set_budgets"), structures.index("ad_set_budgets_multi_ad")]
    ad_set_campaign = market.ad_set_campaign
    firsts = [int(np.flatnonzero(ad_set_campaign == c)[0]) for c in chosen]
    at = days * 24 // 2
    return tuple(AdvertiserPause(at_hour=at, ad_set_index=i) for i in firsts), chosen


def one_run(seed: int, days: int, policy: str) -> dict[str, Any]:
    """One policy on one seed: per-campaign clicks and spend per hour, pauses, outcomes."""
    pauses, paused_campaigns = advertiser_pauses(seed, days)
    spec = _spec(seed, days, policy, pauses)
    market = SimulatedMarket(spec.market_config())
    campaign_of = market.campaign_of
    hours = spec.days * 24
    clicks = np.zeros((hours, CAMPAIGNS), dtype=np.int64)
    spend = np.zeros((hours, CAMPAIGNS), dtype=np.int64)

    def on_hour() -> None:
        h = market.hour_index - 1
        record = market.history(h)
        assert record is not None
        clicks[h] = np.bincount(campaign_of, weights=record.clicks, minlength=CAMPAIGNS)
        spend[h] = np.bincount(campaign_of, weights=record.spend_minor, minlength=CAMPAIGNS)

    started = time.perf_counter()
    _, errors, trace, _ = run_policy(spec, on_hour, market=market)
    truth = market.evaluation
    structures = [market.structure_of(c) for c in range(CAMPAIGNS)]
    at, window = pauses[0].at_hour, min(72, pauses[0].at_hour)
    kept = {
        str(c): float(spend[hours - window :, c].sum() / max(1, spend[at - window : at, c].sum()))
        for c in paused_campaigns
    }
    return {
        "seed": seed,
        "policy": policy,
        "days": days,
        "seconds": round(time.perf_counter() - started, 1),
        "errors": errors[:5],
        "error_count": len(errors),
        "by_structure": {
            s: {
                "clicks": int(
                    sum(clicks[:, c].sum() for c in range(CAMPAIGNS) if structures[c] == s)
                ),
                "spend_minor": int(
                    sum(spend[:, c].sum() for c in range(CAMPAIGNS) if structures[c] == s)
                ),
            }
            for s in STRUCTURES
        },
        "outcomes": dict(sorted(trace.campaign_outcomes.items())),
        "pauses": len(truth.ad_pauses()),
        "false_pauses": len(truth.false_pauses()),
        "reactivated_advertiser_pauses": len(truth.reactivated_advertiser_pauses()),
        "paused_campaigns": {str(c): structures[c] for c in paused_campaigns},
        "spend_after_pause_vs_before": kept,
    }


def _job(args: tuple[int, int, str]) -> dict[str, Any]:
    return one_run(*args)


def _interval(values: list[float]) -> tuple[float, float, float]:
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def table(runs: list[dict[str, Any]]) -> str:
    """The markdown table of the runs (paired by seed)."""
    by = {(r["seed"], r["policy"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    lines = [
        "| structure | uniform clicks/$ | managed clicks/$ | managed ÷ uniform (95% CI, seeds) |",
        "|---|---|---|---|",
    ]
    for s in STRUCTURES:
        cpd = {
            p: [
                per_dollar(
                    by[(seed, p)]["by_structure"][s]["clicks"],
                    by[(seed, p)]["by_structure"][s]["spend_minor"],
                )
                for seed in seeds
            ]
            for p in POLICIES
        }
        ratios = [m / u for m, u in zip(cpd["loops=2,7"], cpd["uniform"], strict=True) if u > 0]
        mean, low, high = _interval(ratios)
        lines.append(
            f"| {s} | {statistics.fmean(cpd['uniform']):.3f} | "
            f"{statistics.fmean(cpd['loops=2,7']):.3f} | {mean:.3f} ({low:.3f}–{high:.3f}) |"
        )
    lines.append("")
    lines.append(
        "| policy | campaign-hours by outcome (all seeds) | pauses | false pauses | re-activated"
        " advertiser pauses | spend after ÷ before the advertiser's pause |"
    )
    lines.append("|---|---|---|---|---|---|")
    for p in POLICIES:
        mine = [by[(seed, p)] for seed in seeds]
        outcomes: dict[str, int] = {}
        for r in mine:
            for k, v in r["outcomes"].items():
                outcomes[k] = outcomes.get(k, 0) + v
        kept: dict[str, list[float]] = {}
        for r in mine:
            for c, ratio in r["spend_after_pause_vs_before"].items():
                kept.setdefault(r["paused_campaigns"][c], []).append(ratio)
        kept_text = "; ".join(f"{s}: {statistics.fmean(v):.2f}" for s, v in sorted(kept.items()))
        outcome_text = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        lines.append(
            f"| {p} | {outcome_text} | {sum(r['pauses'] for r in mine)} | "
            f"{sum(r['false_pauses'] for r in mine)} | "
            f"{sum(r['reactivated_advertiser_pauses'] for r in mine)} | {kept_text} |"
        )
    return "\n".join(lines) + "\n"


def run(quick: bool = False, days: int = 14, seeds: int = 5, workers: int = 2) -> dict[str, Any]:
    """Every run (``--quick``: 2 days x 1 seed), written to ``OUT``; the table as the result."""
    days, seeds = (2, 1) if quick else (days, seeds)
    jobs = [(seed, days, p) for seed in range(1, seeds + 1) for p in POLICIES]
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(workers) as pool:
        for n, one in enumerate(pool.map(_job, jobs), start=1):
            runs.append(one)
            print(f"[{n}/{len(jobs)}] seed {one['seed']} {one['policy']}: {one['seconds']} s",
                  file=sys.stderr, flush=True)  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "runs.json").write_text(json.dumps(runs, indent=2) + "\n")
    text = table(runs)
    (OUT / "table.md").write_text(text)
    seconds = round(time.perf_counter() - started)
    return {"days": days, "seeds": seeds, "seconds": seconds, "table": text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 days x 1 seed")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    result = run(args.quick, args.days, args.seeds, args.workers)
    print(result["table"])
    print(
        f"{result['days']} days x {result['seeds']} seeds, {result['seconds']} s", file=sys.stderr
    )


if __name__ == "__main__":
    main()
