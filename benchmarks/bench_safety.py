"""Money safety (issue #14): the service before its money-safety rules against after, in one run.

**Synthetic data**: the simulated market, with Meta's learning phase on (penalty 0.2 unless a row
says otherwise). Each policy runs through the service's own hourly cycle twice on the same seeded
market: ``legacy`` guardrails (the service before the rules: no account ceiling, promotions ×2
growing their campaign, no edit rules) and ``safe`` (today's defaults on autopilot, the account
ceiling at its starting daily total). The uniform split runs once per seed and market.

Figures: clicks per dollar against uniform (Thompson alone, all seven loops); budget edits per
ad set per day and their size |new − old| / old (every budget write is logged by the market);
the total daily budget at the end against the starting (planned) total, per account and
campaign; the largest ratio of an account's total daily budget to its ceiling (the starting
total) after any write; a sensitivity row (penalty 0.1 and 0.4) and a null twin (learning phase
off). Plus a recommend-mode run (the service's default mode) that must write nothing.

Writes ``benchmarks/out/safety/{runs.json,table.md}``. The full run is 14 days × 5 seeds on 4
accounts × 3 campaigns × 5 ad sets; ``--days``, ``--seeds``, ``--accounts``, ``--campaigns`` (or
``ADFLYWHEEL_SAFETY_DAYS`` / ``ADFLYWHEEL_SAFETY_SEEDS``) make it smaller. One process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from adflywheel.core.domain import per_dollar
from adflywheel.sim.harness import SimulationSpec, run_policy, run_reference
from adflywheel.sim.market import LearningPhase, SimulatedMarket

OUT = Path(__file__).parent / "out" / "safety"
GUARDRAILS = ("legacy", "safe")
DEFAULT_PENALTY = LearningPhase().penalty
# (label, policy, learning penalty; None = the learning phase off)
ROWS: tuple[tuple[str, str, float | None], ...] = (
    ("thompson alone", "thompson", DEFAULT_PENALTY),
    ("all seven loops", "loops=all", DEFAULT_PENALTY),
    ("thompson alone, penalty 0.1", "thompson", 0.1),
    ("thompson alone, penalty 0.4", "thompson", 0.4),
    ("thompson alone, learning phase off (null twin)", "thompson", None),
)
SIZE_BINS = (0.01, 0.05, 0.20)


def _noop() -> None:
    return None


def _spec(
    policy: str,
    guardrails: str,
    seed: int,
    days: int,
    world: tuple[int, int, int],
    penalty: float | None,
) -> SimulationSpec:
    accounts, campaigns, variants = world
    return SimulationSpec(
        days=days,
        seed=seed,
        policy=policy,
        accounts=accounts,
        campaigns_per_account=campaigns,
        variants_per_campaign=variants,
        guardrails=guardrails,
        learning_penalty=penalty,
    )


def edit_stats(market: SimulatedMarket, days: int) -> dict[str, Any]:
    """Budget edits through the platform: how many per ad set and day, and how big."""
    edits = market.evaluation.budget_edits()
    n_ad_sets = len(market.ad_set_ids)
    sizes = [abs(e.new_minor - e.old_minor) / e.old_minor for e in edits if e.old_minor > 0]
    out: dict[str, Any] = {
        "writes": len(market.evaluation.budget_writes()),
        "edits": len(edits),
        "increases": sum(e.new_minor > e.old_minor for e in edits),
        "from_zero": sum(e.old_minor == 0 for e in edits),
        "edits_per_ad_set_day": len(edits) / (n_ad_sets * days),
        "sizes": [round(s, 6) for s in sizes],
    }
    gaps: list[int] = []
    increase_gaps: list[int] = []
    last: dict[int, int] = {}
    last_increase: dict[int, int] = {}
    for e in edits:
        if e.ad_set_index in last:
            gaps.append(e.hour - last[e.ad_set_index])
        last[e.ad_set_index] = e.hour
        if e.new_minor > e.old_minor:
            if e.ad_set_index in last_increase:
                increase_gaps.append(e.hour - last_increase[e.ad_set_index])
            last_increase[e.ad_set_index] = e.hour
    out["min_hours_between_edits"] = min(gaps) if gaps else None
    out["min_hours_between_increases"] = min(increase_gaps) if increase_gaps else None
    return out


def budget_stats(market: SimulatedMarket, start: np.ndarray) -> dict[str, Any]:
    """End against start totals per account and campaign; the largest account total over its
    ceiling (the starting total) after any write, replaying the market's write log in order."""
    v = market.config.variants_per_campaign
    per_account = market.config.campaigns_per_account
    campaign_start = start.reshape(-1, v).sum(axis=1)
    campaign_end = market.campaign_budget_totals()
    account_start = campaign_start.reshape(-1, per_account).sum(axis=1)
    account_end = campaign_end.reshape(-1, per_account).sum(axis=1)
    account_of = np.arange(len(start)) // (v * per_account)
    budgets = start.astype(np.int64).copy()
    totals = account_start.astype(np.int64).copy()
    worst = hourly = float((totals / account_start).max())
    hour: int | None = None
    for w in market.evaluation.budget_writes(source=None):
        if w.hour != hour:  # the previous hour's writes are all in: the budgets it ended with
            hourly = max(hourly, float((totals / account_start).max()))
            hour = w.hour
        a = account_of[w.ad_set_index]
        totals[a] += w.new_minor - budgets[w.ad_set_index]
        budgets[w.ad_set_index] = w.new_minor
        worst = max(worst, float(totals[a] / account_start[a]))
    hourly = max(hourly, float((totals / account_start).max()))
    return {
        "account_end_over_start": [round(float(x), 6) for x in account_end / account_start],
        "campaign_end_over_start": [round(float(x), 6) for x in campaign_end / campaign_start],
        "max_account_total_over_ceiling": round(worst, 6),
        "max_account_total_over_ceiling_hourly": round(hourly, 6),
    }


def policy_run(spec: SimulationSpec) -> dict[str, Any]:
    """One policy run through the service, with the market kept for its write log."""
    market = SimulatedMarket(spec.market_config())
    start = market.budgets()
    began = time.perf_counter()
    totals, errors, _trace, _loops = run_policy(spec, _noop, market=market)
    n_ad_sets = len(market.ad_set_ids)
    learning = market.evaluation.hours_in_learning_array()
    return {
        "policy": spec.policy,
        "guardrails": spec.guardrails,
        "seed": spec.seed,
        "days": spec.days,
        "learning_penalty": spec.learning_penalty,
        "clicks": totals.clicks,
        "conversions": totals.conversions,
        "spend_minor": totals.spend_minor,
        "clicks_per_dollar": totals.clicks_per_dollar,
        "conversions_per_dollar": per_dollar(totals.conversions, totals.spend_minor),
        "edits": edit_stats(market, spec.days),
        "budget": budget_stats(market, start),
        "platform_writes": market.evaluation.platform_writes(),
        "significant_edits_per_ad_set": float(
            market.evaluation.significant_edits_array().sum() / n_ad_sets
        ),
        "share_of_hours_in_learning": float(learning.sum() / (n_ad_sets * spec.days * 24)),
        "cycle_errors": errors,
        "seconds": round(time.perf_counter() - began, 1),
    }


def uniform_run(spec: SimulationSpec) -> dict[str, Any]:
    totals = run_reference(spec, "uniform", _noop)
    return {
        "clicks_per_dollar": totals.clicks_per_dollar,
        "conversions_per_dollar": per_dollar(totals.conversions, totals.spend_minor),
    }


def _interval(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "low": None, "high": None}
    mean = statistics.fmean(values)
    if len(values) < 2:
        return {"mean": round(mean, 4), "low": None, "high": None}
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return {"mean": round(mean, 4), "low": round(mean - half, 4), "high": round(mean + half, 4)}


def _shares(sizes: list[float]) -> dict[str, float | None]:
    if not sizes:
        return {"n": 0}
    n = len(sizes)
    out: dict[str, Any] = {"n": n}
    for bound in SIZE_BINS:
        out[f"le_{bound:.0%}"] = round(sum(s <= bound + 1e-12 for s in sizes) / n, 4)
    out["gt_20%"] = round(sum(s > 0.20 + 1e-12 for s in sizes) / n, 4)
    out["gt_50%"] = round(sum(s > 0.50 + 1e-12 for s in sizes) / n, 4)
    out["median"] = round(statistics.median(sizes), 4)
    out["max"] = round(max(sizes), 4)
    return out


def _label(label: str, guardrails: str) -> str:
    return f"{label} / {guardrails}"


def aggregate(runs: list[dict[str, Any]], uniform: dict[str, dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for label, policy, penalty in ROWS:
        by_guardrails: dict[str, list[dict[str, Any]]] = {
            g: [
                r
                for r in runs
                if r["policy"] == policy
                and r["learning_penalty"] == penalty
                and r["guardrails"] == g
            ]
            for g in GUARDRAILS
        }
        if not any(by_guardrails.values()):
            continue
        row: dict[str, Any] = {"policy": policy, "learning_penalty": penalty}
        for g, mine in by_guardrails.items():
            ratios = [
                r["clicks_per_dollar"] / uniform[_ukey(r["seed"], penalty)]["clicks_per_dollar"]
                for r in mine
            ]
            sizes = [s for r in mine for s in r["edits"]["sizes"]]
            accounts = [x for r in mine for x in r["budget"]["account_end_over_start"]]
            campaigns = [x for r in mine for x in r["budget"]["campaign_end_over_start"]]
            gaps = [
                r["edits"]["min_hours_between_edits"]
                for r in mine
                if r["edits"]["min_hours_between_edits"] is not None
            ]
            increase_gaps = [
                r["edits"]["min_hours_between_increases"]
                for r in mine
                if r["edits"]["min_hours_between_increases"] is not None
            ]
            row[g] = {
                "seeds": [r["seed"] for r in mine],
                "clicks_per_dollar_vs_uniform": _interval(ratios),
                "clicks_per_dollar_vs_uniform_per_seed": [round(x, 4) for x in ratios],
                "edits_per_ad_set_day": _interval(
                    [r["edits"]["edits_per_ad_set_day"] for r in mine]
                ),
                "edit_sizes": _shares(sizes),
                "edits_from_zero": sum(r["edits"]["from_zero"] for r in mine),
                "min_hours_between_edits": min(gaps) if gaps else None,
                "min_hours_between_increases": min(increase_gaps) if increase_gaps else None,
                "significant_edits_per_ad_set": _interval(
                    [r["significant_edits_per_ad_set"] for r in mine]
                ),
                "share_of_hours_in_learning": _interval(
                    [r["share_of_hours_in_learning"] for r in mine]
                ),
                "account_end_over_start": _range(accounts),
                "campaign_end_over_start": _range(campaigns),
                "max_account_total_over_ceiling": max(
                    (r["budget"]["max_account_total_over_ceiling"] for r in mine), default=None
                ),
                "max_account_total_over_ceiling_hourly": max(
                    (r["budget"]["max_account_total_over_ceiling_hourly"] for r in mine),
                    default=None,
                ),
                "cycle_errors": sum(len(r["cycle_errors"]) for r in mine),
                "seconds": round(sum(r["seconds"] for r in mine), 1),
            }
        legacy = {r["seed"]: r for r in by_guardrails["legacy"]}
        paired = [
            r["clicks_per_dollar"] / legacy[r["seed"]]["clicks_per_dollar"]
            for r in by_guardrails["safe"]
            if r["seed"] in legacy
        ]
        row["safe_over_legacy_clicks_per_dollar"] = _interval(paired)
        row["safe_over_legacy_per_seed"] = [round(x, 4) for x in paired]
        table[label] = row
    return table


def _range(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"min": None, "mean": None, "max": None}
    return {
        "min": round(min(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "max": round(max(values), 4),
    }


def _ukey(seed: int, penalty: float | None) -> str:
    return f"{seed}:{penalty}"


def recommend_check(days: int, seed: int, world: tuple[int, int, int]) -> dict[str, Any]:
    """All seven loops on accounts in recommend mode (the default): nothing may be written."""
    spec = _spec("loops=all", "recommend", seed, days, world, DEFAULT_PENALTY)
    market = SimulatedMarket(spec.market_config())
    start = market.budgets()
    _totals, errors, _trace, _loops = run_policy(spec, _noop, market=market)
    return {
        "policy": spec.policy,
        "days": days,
        "seed": seed,
        "platform_writes": market.evaluation.platform_writes(),
        "budget_writes": len(market.evaluation.budget_writes()),
        "status_writes": len(market.evaluation.status_writes()),
        "budgets_unchanged": bool((market.budgets() == start).all()),
        "cycle_errors": len(errors),
    }


def run(
    quick: bool = False,
    days: int | None = None,
    seeds: int | None = None,
    world: tuple[int, int, int] = (4, 3, 5),
    recommend_days: int = 2,
    out: Path = OUT,
) -> dict[str, Any]:
    days = days or int(os.environ.get("ADFLYWHEEL_SAFETY_DAYS", 2 if quick else 14))
    n_seeds = seeds or int(os.environ.get("ADFLYWHEEL_SAFETY_SEEDS", 1 if quick else 5))
    seed_list = tuple(range(1, n_seeds + 1))
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    uniform: dict[str, dict[str, Any]] = {}
    jobs = [(s, row, g) for s in seed_list for row in ROWS for g in GUARDRAILS]

    def progress(text: str) -> None:
        print(f"[{time.perf_counter() - began:7.1f} s] {text}", file=sys.stderr, flush=True)

    recommend = recommend_check(recommend_days, seed_list[0], world)
    progress(f"recommend mode: {recommend['platform_writes']} platform writes")
    for n, (seed, (label, policy, penalty), g) in enumerate(jobs, 1):
        key = _ukey(seed, penalty)
        if key not in uniform:
            uniform[key] = uniform_run(_spec("uniform", "safe", seed, days, world, penalty))
        runs.append(policy_run(_spec(policy, g, seed, days, world, penalty)))
        r = runs[-1]
        progress(
            f"{n}/{len(jobs)} seed {seed} {_label(label, g)}: clicks/$ vs uniform "
            f"{r['clicks_per_dollar'] / uniform[key]['clicks_per_dollar']:.3f}, "
            f"{r['edits']['edits']} edits, {r['seconds']} s"
        )
        saved = {"world": list(world), "uniform": uniform, "runs": runs, "recommend": recommend}
        (out / "runs.json").write_text(json.dumps(saved, default=str))
    return _figures(runs, uniform, recommend, world, round(time.perf_counter() - began, 1), out)


def _figures(
    runs: list[dict[str, Any]],
    uniform: dict[str, dict[str, Any]],
    recommend: dict[str, Any],
    world: tuple[int, int, int],
    wall: float | None,
    out: Path,
) -> dict[str, Any]:
    figures = {
        "synthetic": True,
        "days": runs[0]["days"] if runs else None,
        "seeds": sorted({r["seed"] for r in runs}),
        "world": {"accounts": world[0], "campaigns_per_account": world[1], "ad_sets": world[2]},
        "learning_penalty": DEFAULT_PENALTY,
        "recommend": recommend,
        "table": aggregate(runs, uniform),
        "wall_seconds": wall,
        "policy_run_seconds": round(sum(r["seconds"] for r in runs), 1),
    }
    (out / "table.json").write_text(json.dumps(figures, indent=2, default=str))
    (out / "table.md").write_text(markdown(figures))
    return figures


def rebuild(world: tuple[int, int, int], out: Path = OUT) -> dict[str, Any]:
    """The figures again from the runs saved so far (``runs.json``; e.g. of a cut-short run:
    only the seeds whose runs are all in count)."""
    saved = json.loads((out / "runs.json").read_text())
    runs = saved["runs"]
    per_seed = len(ROWS) * len(GUARDRAILS)
    complete = {
        s for s in {r["seed"] for r in runs} if sum(r["seed"] == s for r in runs) == per_seed
    }
    runs = [r for r in runs if r["seed"] in complete]
    world = tuple(saved.get("world", world))
    return _figures(runs, saved["uniform"], saved["recommend"], world, None, out)


def _ci(cell: dict[str, float | None], digits: int = 3) -> str:
    mean, low, high = cell.get("mean"), cell.get("low"), cell.get("high")
    if mean is None:
        return "–"
    if low is None or high is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _rng(cell: dict[str, float | None]) -> str:
    if cell["min"] is None:
        return "–"
    return f"{cell['min']:.3f}–{cell['max']:.3f}"


def _pct(shares: dict[str, Any], key: str) -> str:
    return f"{shares[key]:.0%}" if key in shares else "–"


def markdown(figures: dict[str, Any]) -> str:
    table = figures["table"]
    w = figures["world"]
    lines = [
        f"Simulated market (**synthetic data**), learning phase on (penalty "
        f"{figures['learning_penalty']} unless the row says otherwise); {figures['days']} days, "
        f"seeds {figures['seeds']}; {w['accounts']} accounts × {w['campaigns_per_account']} "
        f"campaigns × {w['ad_sets']} ad sets. Mean (95% t-interval over seeds).",
        "",
        "| policy | clicks/$ vs uniform, legacy | safe | safe ÷ legacy (paired) |",
        "|---|---|---|---|",
    ]
    for label, row in table.items():
        lines.append(
            f"| {label} | {_ci(row['legacy']['clicks_per_dollar_vs_uniform'])} | "
            f"{_ci(row['safe']['clicks_per_dollar_vs_uniform'])} | "
            f"{_ci(row['safe_over_legacy_clicks_per_dollar'])} |"
        )
    main = [label for label, _p, penalty in ROWS[:2] if label in table]
    header = "| metric | " + " | ".join(f"{m}, legacy | {m}, safe" for m in main) + " |"
    lines += ["", header, "|---|" + "---|" * (2 * len(main))]
    metrics: list[tuple[str, Any]] = [
        ("budget edits per ad set per day", lambda c: _ci(c["edits_per_ad_set_day"], 3)),
        ("edits (pooled over seeds)", lambda c: str(c["edit_sizes"]["n"])),
        ("edit size ≤ 1%", lambda c: _pct(c["edit_sizes"], "le_1%")),
        ("edit size ≤ 5%", lambda c: _pct(c["edit_sizes"], "le_5%")),
        ("edit size ≤ 20%", lambda c: _pct(c["edit_sizes"], "le_20%")),
        ("edit size > 20%", lambda c: _pct(c["edit_sizes"], "gt_20%")),
        ("edit size > 50%", lambda c: _pct(c["edit_sizes"], "gt_50%")),
        (
            "edit size median / max",
            lambda c: (
                f"{c['edit_sizes']['median']:.1%} / {c['edit_sizes']['max']:.0%}"
                if c["edit_sizes"]["n"]
                else "–"
            ),
        ),
        ("edits from a budget of 0", lambda c: str(c["edits_from_zero"])),
        ("shortest gap between edits of an ad set (h)", lambda c: _h(c["min_hours_between_edits"])),
        (
            "shortest gap between increases of an ad set (h)",
            lambda c: _h(c["min_hours_between_increases"]),
        ),
        (
            "significant edits (learning resets) per ad set",
            lambda c: _ci(c["significant_edits_per_ad_set"], 2),
        ),
        (
            "share of ad-set hours spent in learning",
            lambda c: _ci(c["share_of_hours_in_learning"], 3),
        ),
        ("account total at end ÷ start (min–max)", lambda c: _rng(c["account_end_over_start"])),
        ("campaign total at end ÷ start (min–max)", lambda c: _rng(c["campaign_end_over_start"])),
        (
            "max account total ÷ ceiling (starting total), end of any hour",
            lambda c: f"{c['max_account_total_over_ceiling_hourly']:.3f}",
        ),
        (
            "max account total ÷ ceiling, after any single write (mid-cycle)",
            lambda c: f"{c['max_account_total_over_ceiling']:.3f}",
        ),
        ("cycle errors", lambda c: str(c["cycle_errors"])),
    ]
    for name, cell in metrics:
        lines.append(
            f"| {name} | "
            + " | ".join(f"{cell(table[m]['legacy'])} | {cell(table[m]['safe'])}" for m in main)
            + " |"
        )
    rec = figures["recommend"]
    lines += [
        "",
        f"Recommend mode (the default; {rec['policy']}, {rec['days']} days, seed {rec['seed']}): "
        f"{rec['platform_writes']} platform writes ({rec['budget_writes']} budget, "
        f"{rec['status_writes']} status), budgets unchanged: {rec['budgets_unchanged']}, "
        f"{rec['cycle_errors']} cycle errors.",
        "",
        f"Wall time {_wall(figures['wall_seconds'])}, one process; policy runs "
        f"{figures['policy_run_seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def _wall(seconds: float | None) -> str:
    return "– (rebuilt from runs.json)" if seconds is None else f"{seconds:.0f} s"


def _h(value: int | None) -> str:
    return "–" if value is None else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="2 days × 1 seed")
    parser.add_argument("--days", type=int, default=None, help="simulated days (full: 14)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 1..N (full: 5)")
    parser.add_argument("--accounts", type=int, default=4)
    parser.add_argument("--campaigns", type=int, default=3, help="campaigns per account")
    parser.add_argument("--ad-sets", type=int, default=5, help="ad sets per campaign")
    parser.add_argument("--recommend-days", type=int, default=2)
    parser.add_argument(
        "--rebuild", action="store_true", help="the figures from the saved runs.json, no run"
    )
    args = parser.parse_args()
    if args.rebuild:
        print(markdown(rebuild((args.accounts, args.campaigns, args.ad_sets))))
        return
    figures = run(
        quick=args.quick,
        days=args.days,
        seeds=args.seeds,
        world=(args.accounts, args.campaigns, args.ad_sets),
        recommend_days=args.recommend_days,
    )
    print(markdown(figures))


if __name__ == "__main__":
    main()
