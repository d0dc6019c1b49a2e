"""Budget policies on the simulated market (synthetic data), through the service's own path.

1. Clicks per dollar over 14 days and 5 seeds: Thompson against the uniform split, epsilon-greedy
   and UCB1 (ratios), and regret against the oracle.
2. Drift: each campaign's truly best variant loses 70% of its CTR at day 7. Clicks per dollar
   of Thompson with discounting (half-life 72 h) and without, relative to the oracle, in the
   hours after the change; the hour from which the policy holds >= 80% of the oracle.
"""

from __future__ import annotations

import statistics
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from adflywheel.sim.harness import SimulationSpec, simulate

POLICIES = ("thompson", "epsilon_greedy", "ucb1")


def _compare(args: tuple[str, int, int]) -> dict[str, Any]:
    policy, seed, days = args
    summary = simulate(SimulationSpec(days=days, seed=seed, policy=policy)).summary()
    return {
        "policy": policy,
        "seed": seed,
        "clicks_per_dollar": summary["clicks_per_dollar"],
        "uniform": summary["uniform_clicks_per_dollar"],
        "oracle": summary["oracle_clicks_per_dollar"],
    }


def _drift(args: tuple[str, int, int, int]) -> dict[str, Any]:
    policy, seed, days, change = args
    result = simulate(
        SimulationSpec(days=days, seed=seed, policy=policy, collapse_best_at_hour=change)
    )
    ratios = []
    for h in range(change, days * 24 - 5):
        oracle = result.oracle.window_clicks_per_dollar(h, h + 6)
        ratios.append(result.policy.window_clicks_per_dollar(h, h + 6) / oracle)
    recovered = next((i for i in range(len(ratios)) if all(r >= 0.8 for r in ratios[i:])), None)
    return {
        "policy": policy,
        "seed": seed,
        "before": result.policy.window_clicks_per_dollar(change - 24, change)
        / result.oracle.window_clicks_per_dollar(change - 24, change),
        "hours_24_48_after": result.policy.window_clicks_per_dollar(change + 24, change + 48)
        / result.oracle.window_clicks_per_dollar(change + 24, change + 48),
        "first_6h_after": ratios[0],
        "hours_until_held_80pct": recovered,
    }


def run(quick: bool = False) -> dict[str, Any]:
    seeds = (1, 2) if quick else (1, 2, 3, 4, 5)
    days = 3 if quick else 14
    with ProcessPoolExecutor(2) as pool:
        rows = list(pool.map(_compare, [(p, s, days) for p in POLICIES for s in seeds]))
        drift_days, change = (4, 48) if quick else (10, 168)
        drift = list(
            pool.map(
                _drift,
                [
                    (p, s, drift_days, change)
                    for p in ("thompson", "thompson_stationary")
                    for s in seeds
                ],
            )
        )
    by_seed = {(r["policy"], r["seed"]): r for r in rows}
    comparison: dict[str, Any] = {}
    for policy in POLICIES:
        mine = [by_seed[(policy, s)] for s in seeds]
        comparison[policy] = {
            "clicks_per_dollar_by_seed": [r["clicks_per_dollar"] for r in mine],
            "ratio_to_uniform_by_seed": [
                round(r["clicks_per_dollar"] / r["uniform"], 4) for r in mine
            ],
            "mean_ratio_to_uniform": round(
                statistics.mean(r["clicks_per_dollar"] / r["uniform"] for r in mine), 4
            ),
            "mean_regret_vs_oracle_pct": round(
                100 * statistics.mean(1 - r["clicks_per_dollar"] / r["oracle"] for r in mine), 2
            ),
        }
    for baseline in ("epsilon_greedy", "ucb1"):
        comparison[f"thompson_over_{baseline}_by_seed"] = [
            round(
                by_seed[("thompson", s)]["clicks_per_dollar"]
                / by_seed[(baseline, s)]["clicks_per_dollar"],
                4,
            )
            for s in seeds
        ]
    drift_summary: dict[str, Any] = {}
    for policy in ("thompson", "thompson_stationary"):
        mine = [d for d in drift if d["policy"] == policy]
        drift_summary[policy] = {
            "ratio_to_oracle_day_before": [round(d["before"], 3) for d in mine],
            "ratio_to_oracle_first_6h_after": [round(d["first_6h_after"], 3) for d in mine],
            "ratio_to_oracle_24_48h_after": [round(d["hours_24_48_after"], 3) for d in mine],
            "hours_until_held_at_80pct": [d["hours_until_held_80pct"] for d in mine],
        }
    return {
        "synthetic": True,
        "days": days,
        "seeds": list(seeds),
        "comparison": comparison,
        "drift": {"change_at_hour": change, "days": drift_days, **drift_summary},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
