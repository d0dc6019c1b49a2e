"""The compounding experiment: which learning loops pay for themselves (synthetic data).

Each loop set runs through the service's own hourly cycle on the simulated market, against the
uniform split and the oracle on identical seeded markets: clicks and conversions per dollar,
prediction quality (loop 6's headline accuracy and normalised entropy, last simulated day),
retrains, false promotions, and the hours until a campaign's truly best ad first had twice its
starting budget. Means with 95% t-intervals over seeds. Writes a markdown table and plots to
``benchmarks/out/ablation/``.

``ADFLYWHEEL_ABLATION_DAYS`` / ``ADFLYWHEEL_ABLATION_SEEDS`` override the size (the full run is
14 days × 5 seeds; quick is 2 days × 2 seeds).
"""

from __future__ import annotations

import json
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from scipy import stats

from adflywheel.sim.harness import SimulationSpec, simulate

SETS = {
    "thompson alone (loops=2)": "loops=2",
    "the note's 3 loops (loops=1,2,3)": "loops=1,2,3",
    "all seven loops (loops=all)": "loops=all",
}
OUT = Path(__file__).parent / "out" / "ablation"


def _one(args: tuple[str, int, int, int]) -> dict[str, Any]:
    policy, seed, days, accounts = args
    spec = SimulationSpec(
        days=days,
        seed=seed,
        policy=policy,
        accounts=accounts,
        # Two of each campaign's five variants launch at mid-run: new creatives, where memory,
        # niche priors and the compound prior can matter.
        late_variants_per_campaign=2,
        late_launch_hour=days * 12,
    )
    result = simulate(spec)
    summary = result.summary()
    accuracy = result.trace.accuracy
    if accuracy:
        first_hour = accuracy[0][0]
        first = [v for h, v in accuracy if h < first_hour + 24]
        summary["accuracy_first_day"] = statistics.fmean(first)
    summary["series"] = result.trace.series()
    summary["cumulative_cpd"] = result.policy.cumulative_clicks_per_dollar()
    summary["uniform_cumulative_cpd"] = result.uniform.cumulative_clicks_per_dollar()
    summary["oracle_cumulative_cpd"] = result.oracle.cumulative_clicks_per_dollar()
    return summary


def _interval(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "low": None, "high": None}
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": round(mean, 4), "low": None, "high": None}
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return {"mean": round(mean, 4), "low": round(mean - half, 4), "high": round(mean + half, 4)}


def _spread(values: list[float]) -> dict[str, float | None]:
    """Median and range over seeds: for hours, whose t-interval would run below zero."""
    if not values:
        return {"mean": None, "low": None, "high": None}
    return {
        "mean": round(statistics.median(values), 1),
        "low": round(min(values), 1),
        "high": round(max(values), 1),
    }


def _column(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if isinstance(r.get(key), (int, float))]


def run(quick: bool = False) -> dict[str, Any]:
    days = int(os.environ.get("ADFLYWHEEL_ABLATION_DAYS", 2 if quick else 14))
    n_seeds = int(os.environ.get("ADFLYWHEEL_ABLATION_SEEDS", 2 if quick else 5))
    accounts = 2
    seeds = tuple(range(1, n_seeds + 1))
    jobs = [(policy, s, days, accounts) for policy in SETS.values() for s in seeds]
    with ProcessPoolExecutor(2) as pool:
        rows = list(pool.map(_one, jobs))
    table: dict[str, Any] = {}
    for label, policy in SETS.items():
        mine = [r for r in rows if r["policy"] == policy]
        cpd_ratio = [r["clicks_per_dollar"] / r["uniform_clicks_per_dollar"] for r in mine]
        oracle_share = [r["clicks_per_dollar"] / r["oracle_clicks_per_dollar"] for r in mine]
        table[label] = {
            "policy": policy,
            "clicks_per_dollar_vs_uniform": _interval(cpd_ratio),
            "clicks_per_dollar_share_of_oracle": _interval(oracle_share),
            "conversions_per_dollar_vs_uniform": _interval(
                [
                    r["conversions_per_dollar"] / r["uniform_conversions_per_dollar"]
                    for r in mine
                    if r.get("uniform_conversions_per_dollar")
                ]
            ),
            "accuracy_first_day": _interval(_column(mine, "accuracy_first_day")),
            "accuracy": _interval(_column(mine, "accuracy")),
            "normalized_entropy": _interval(_column(mine, "normalized_entropy")),
            "retrains": sum(int(r.get("retrains") or 0) for r in mine),
            "promotions": sum(int(r.get("promotions") or 0) for r in mine),
            "false_promotions": sum(int(r.get("false_promotions") or 0) for r in mine),
            "hours_to_double_median": _spread(_column(mine, "hours_to_double_median")),
            "cycle_errors": sum(len(r["cycle_errors"]) for r in mine),
        }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.md").write_text(markdown(table, days, seeds))
    (OUT / "runs.json").write_text(json.dumps(rows, default=str))
    _plot(rows, OUT)
    return {"days": days, "seeds": list(seeds), "accounts": accounts, "table": table}


def _fmt(cell: dict[str, float | None], pct: bool = False) -> str:
    mean, low, high = cell["mean"], cell["low"], cell["high"]
    if mean is None:
        return "–"
    text = f"{mean:.3f}" if pct else f"{mean:.3g}"
    return f"{text} ({low:.3f}–{high:.3f})" if low is not None and high is not None else text


def _hours(cell: dict[str, float | None]) -> str:
    if cell["mean"] is None:
        return "–"
    return f"{cell['mean']:.1f} ({cell['low']:.0f}–{cell['high']:.0f})"


def markdown(table: dict[str, Any], days: int, seeds: tuple[int, ...]) -> str:
    lines = [
        f"Simulated market (synthetic data), {days} days, seeds {list(seeds)}; "
        "mean (95% t-interval over seeds).",
        "",
        "| loops | clicks/$ vs uniform | share of oracle | conversions/$ vs uniform | "
        "accuracy, first scored day → last day | NE | retrains | promotions (false) | "
        "hours to 2× budget: median (range) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, row in table.items():
        lines.append(
            f"| {label} | {_fmt(row['clicks_per_dollar_vs_uniform'], True)} | "
            f"{_fmt(row['clicks_per_dollar_share_of_oracle'], True)} | "
            f"{_fmt(row['conversions_per_dollar_vs_uniform'], True)} | "
            f"{_fmt(row['accuracy_first_day'], True)} → {_fmt(row['accuracy'], True)} | "
            f"{_fmt(row['normalized_entropy'], True)} | {row['retrains']} | "
            f"{row['promotions']} ({row['false_promotions']}) | "
            f"{_hours(row['hours_to_double_median'])} |"
        )
    return "\n".join(lines) + "\n"


def _relative_to_uniform(runs: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """Days and the mean over seeds of a cumulative clicks-per-dollar curve over uniform's."""
    n = min(len(r[key]) for r in runs)
    ratio = [
        statistics.fmean(r[key][h] / r["uniform_cumulative_cpd"][h] for r in runs) for h in range(n)
    ]
    return [h / 24 for h in range(1, n + 1)], ratio


def replot() -> None:
    """Redraw the plots from the last run's ``runs.json``."""
    _plot(json.loads((OUT / "runs.json").read_text()), OUT)


def _plot(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right, third) = plt.subplots(1, 3, figsize=(17, 4.5), dpi=110)
    for label, policy in SETS.items():
        mine = [r for r in rows if r["policy"] == policy]
        if not mine:
            continue
        left.plot(*_relative_to_uniform(mine, "cumulative_cpd"), label=label)
        for axis, key in ((right, "accuracy"), (third, "normalized_entropy")):
            points = [v for r in mine for v in r["series"].get(key, [])]
            if not points:
                continue
            by_hour: dict[int, list[float]] = {}
            for hour, value in points:
                by_hour.setdefault(int(hour), []).append(float(value))
            hours = sorted(by_hour)
            axis.plot(
                [h / 24 for h in hours],
                [statistics.fmean(by_hour[h]) for h in hours],
                label=label,
            )
    # The references are the same for every loop set of a seed: take one set's runs.
    first = [r for r in rows if r["policy"] == rows[0]["policy"]]
    left.plot(*_relative_to_uniform(first, "oracle_cumulative_cpd"), "--", label="greedy oracle")
    left.axhline(1.0, color="grey", linestyle=":", label="uniform split")
    left.set_xlabel("simulated days")
    left.set_ylabel("cumulative clicks per dollar ÷ uniform's (mean over seeds)")
    left.set_title("Clicks per dollar against the uniform split (synthetic data)")
    left.legend(fontsize=7)
    right.set_xlabel("simulated days")
    right.set_ylabel("headline accuracy (1 − weighted rel. error)")
    right.set_title("Prediction accuracy over time (loop 6)")
    right.legend(fontsize=7)
    third.set_xlabel("simulated days")
    third.set_ylabel("normalised entropy (< 1 beats the base rate)")
    third.set_title("Prediction NE over time (loop 6)")
    third.legend(fontsize=7)
    for axis in (left, right, third):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(out / "ablation.png")
    plt.close(figure)
