"""The compounding experiment: which learning loops pay for themselves (synthetic data).

Issue #15 item 6. On the churn scenario (``adflywheel.sim.scenarios``: creative churn, niches of
accounts sharing a gene truth) each loop set runs through the service's own hourly cycle, paired
by seed against Thompson alone: all seven loops, and all seven minus each of loops 1, 3, 4, 5;
on its null twin (creatives don't matter) and strong twin, Thompson alone and all seven.
``--scenario legacy`` is the experiment before the churn scenario (2 accounts, 2 late variants per
campaign, 14 days).

Sharded and resumable (``ablation_shards``): each (scenario, set, seed) run is one JSON file in
``benchmarks/out/ablation/<scenario>/runs/``, written when it finishes; a re-run skips finished
shards, so the design can be run over several sittings and processes. Tables and plots are
rebuilt from whatever shards exist (``ablation_tables``)::

    python -m benchmarks.bench_ablation --scenario churn --seeds 1-5 --workers 2
    python -m benchmarks.bench_ablation --scenario churn --tables-only
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adflywheel.core import loops as loops_registry
from adflywheel.core.loops import Loop
from adflywheel.sim.harness import SimulationSpec, simulate
from adflywheel.sim.scenarios import SCENARIOS, churn_spec
from benchmarks.ablation_design import (
    BASELINE,
    DESIGN,
    FULL_SEEDS,
    OPTIONAL,
    OUT,
    QUICK_SEEDS,
    SCENARIO_NAMES,
    Shard,
    parse_seeds,
    scenario_folder,
    sets_for,
    shards,
)
from benchmarks.ablation_shards import DEFAULT_STALE_HOURS, Runner, load_results, run_shards
from benchmarks.ablation_tables import aggregate, markdown, projected_seconds, summary_markdown
from benchmarks.publish import README, RESULTS, publish

LEGACY_DAYS, LEGACY_QUICK_DAYS = 14, 2


def build_spec(shard: Shard) -> SimulationSpec:
    """The shard's simulation, the marginal oracle always among its references."""
    policy = shard.loop_set.policy
    if shard.scenario == "legacy":
        days = shard.days or (LEGACY_QUICK_DAYS if shard.quick else LEGACY_DAYS)
        spec = SimulationSpec(
            days=days,
            seed=shard.seed,
            policy=policy,
            accounts=2,
            late_variants_per_campaign=2,
            late_launch_hour=days * 12,
        )
    else:
        extra = {"days": shard.days} if shard.days is not None else {}
        spec = churn_spec(
            shard.seed,
            policy,
            gene_effect_scale=SCENARIOS[shard.scenario],
            quick=shard.quick,
            **extra,
        )
    if "marginal_oracle" not in spec.references:
        spec = dataclasses.replace(spec, references=(*spec.references, "marginal_oracle"))
    return spec


def simulate_shard(shard: Shard) -> dict[str, Any]:
    """The runner of a real shard: the run's summary plus the curves the plots need."""
    code = code_version()  # before the run: the code it starts on
    result = simulate(build_spec(shard))
    summary = result.summary()
    summary["loops_unavailable"] = _unavailable(shard.loop_set.loops)
    summary["code"] = code
    curves = {"policy": result.policy, "uniform": result.uniform, "oracle": result.oracle}
    if result.marginal_oracle is not None:
        curves["marginal_oracle"] = result.marginal_oracle
    summary["cumulative_cpd"] = {
        name: [round(v, 5) for v in totals.cumulative_clicks_per_dollar()]
        for name, totals in curves.items()
    }
    return summary


def code_version() -> str:
    """The commit the shard ran on, "+dirty" when the tracked files differ from it: a shard
    from older code is still read, and the table lists every version it pooled."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (commit or "unknown") + ("+dirty" if dirty else "")


def _unavailable(wanted: frozenset[Loop]) -> dict[str, str]:
    """Loops of the set this installation cannot run (an extra they need is missing): such a
    set is not the set it is named after, and the table says so."""
    why = getattr(loops_registry, "unavailable", None)
    if why is None:
        return {}
    return {str(int(loop)): reason for loop in sorted(wanted) if (reason := why(loop))}


def execute(
    scenario: str,
    seeds: tuple[int, ...],
    *,
    quick: bool = False,
    wanted_sets: str | None = None,
    workers: int = 1,
    days: int | None = None,
    root: Path = OUT,
    runner: Runner = simulate_shard,
    stale_hours: float = DEFAULT_STALE_HOURS,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run the shards not finished yet, then rebuild the scenario's tables and plots."""
    folder = scenario_folder(scenario, quick, days, root)
    todo = shards(scenario, sets_for(scenario, wanted_sets, quick), seeds, quick, days)
    if show_progress:
        with _progress_bar(len(todo), scenario) as advance:
            sitting = run_shards(folder, todo, runner, workers, stale_hours, advance)
    else:
        sitting = run_shards(folder, todo, runner, workers, stale_hours)
    figures = write_outputs(scenario, folder, quick)
    if (quick, days, root) == (False, None, OUT):
        figures["published"] = publish_tables(root)
    figures["sitting"] = {
        "ran": len(sitting.ran),
        "already_done": len(sitting.done),
        "locked_elsewhere": sitting.locked,
        "failed": sitting.failed,
        "seconds": round(sitting.seconds, 1),
    }
    return figures


def write_outputs(scenario: str, folder: Path, quick: bool) -> dict[str, Any]:
    """table.md and ablation.png from every shard in the folder; the headline figures."""
    rows = load_results(folder)
    data = aggregate(scenario, rows)
    design = {s.slug: len(FULL_SEEDS) for s in DESIGN[scenario]}
    projected = (
        None
        if quick
        else {key: projected_seconds(rows, design, key) for key in ("seconds", "cpu_seconds")}
    )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "table.md").write_text(markdown(data, projected, sum(design.values())))
    if rows:
        plot(data, rows, folder / "ablation.png")
    return {
        "scenario": scenario,
        "folder": str(folder),
        "shards": data["shards"],
        "machine_hours": round(data["seconds"] / 3600, 3),
        "cpu_hours": round(data["cpu_seconds"] / 3600, 3),
        "projected_full_design_hours": {
            key: round(value / 3600, 2) for key, value in (projected or {}).items() if value
        },
        "clicks_per_dollar_vs_thompson": {
            slug: _rounded(row["cpd"]) for slug, row in data["table"].items()
        },
        "cold_start_vs_thompson": {
            slug: _rounded(row["cold_start"]) for slug, row in data["table"].items()
        },
    }


def publish_tables(root: Path = OUT) -> dict[str, bool]:
    """The full design's tables into RESULTS.md (one block per scenario, with its plot) and the
    summary over every scenario run so far into the README, between their markers."""
    datas, blocks = [], {}
    for scenario in DESIGN:
        folder = scenario_folder(scenario, root=root)
        rows = load_results(folder)
        if scenario == "legacy" or not rows:
            continue
        datas.append(aggregate(scenario, rows))
        table = (folder / "table.md").read_text(encoding="utf-8")
        image = folder.relative_to(RESULTS.parent) / "ablation.png"
        blocks[RESULTS, f"ablation-{scenario}"] = (
            f"{table.strip()}\n\n![ablation, scenario {scenario}]({image.as_posix()})"
        )
    if datas:
        blocks[README, "ablation-summary"] = summary_markdown(datas)
    return publish(blocks)


def _rounded(cell: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in cell.items()}


@contextmanager
def _progress_bar(total: int, scenario: str) -> Iterator[Callable[[Shard, str], None]]:
    """A rich progress bar over shards; each finished, skipped or failed shard advances it."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[last]}"),
    )
    # On stderr: benchmarks/run.py prints its JSON document on stdout.
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(f"ablation {scenario}", total=total, last="")

        def advance(shard: Shard, status: str) -> None:
            progress.update(task, advance=1, last=f"{shard.name}: {status}")

        yield advance


SHORT = {"uniform": "uniform", "oracle": "greedy oracle", "marginal_oracle": "marginal oracle"}


def _relative_curve(pairs: list[tuple[dict[str, Any], dict[str, Any]]], key: str) -> list[float]:
    """Mean over seeds of a cumulative clicks-per-dollar curve ÷ Thompson alone's, hour by hour."""
    curves = [
        [a / b if b else 1.0 for a, b in zip(mine[key], base["policy"], strict=False)]
        for mine, base in pairs
        if key in mine and "policy" in base
    ]
    if not curves:
        return []
    n = min(len(c) for c in curves)
    return [statistics.fmean(c[h] for c in curves) for h in range(n)]


def plot(data: dict[str, Any], rows: list[dict[str, Any]], path: Path) -> None:
    """Three panels: each set's clicks per dollar ÷ Thompson alone's (all hours and cold start,
    95% intervals); the cumulative ratio over days; headline accuracy by day."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = data["table"]
    figure, (bars, curves, accuracy) = plt.subplots(1, 3, figsize=(18, 5.5), dpi=110)
    slugs = list(table)
    for offset, key, name in ((-0.15, "cpd", "all hours"), (0.15, "cold_start", "first 72 h")):
        xs, means, errors = [], [], [[], []]
        for i, slug in enumerate(slugs):
            cell = table[slug][key]
            if cell["mean"] is None:
                continue
            xs.append(i + offset)
            means.append(cell["mean"])
            errors[0].append(
                cell["mean"] - (cell["low"] if cell["low"] is not None else cell["mean"])
            )
            errors[1].append(
                (cell["high"] if cell["high"] is not None else cell["mean"]) - cell["mean"]
            )
        bars.errorbar(xs, means, yerr=errors, fmt="o", capsize=3, label=name)
    bars.axhline(1.0, color="grey", linestyle=":")
    bars.axhline(0.99, color="red", linestyle=":", linewidth=0.8, label="null-twin floor 0.99")
    names = [SHORT.get(s, table[s]["label"].split(" (")[0]) for s in slugs]
    bars.set_xticks(range(len(slugs)), names, rotation=30, ha="right", fontsize=8)
    bars.set_ylabel("clicks/$ ÷ Thompson alone's (paired)")
    bars.set_title(f"Against Thompson alone, {data['scenario']} (synthetic)")
    bars.legend(fontsize=7)

    base = {int(r["seed"]): r.get("cumulative_cpd") or {} for r in rows if r["set"] == BASELINE}
    by_set: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_set.setdefault(str(row["set"]), []).append(row)
    for slug, mine in by_set.items():
        label = table.get(slug, {}).get("label", slug).split(" (")[0]
        pairs = [
            (r.get("cumulative_cpd") or {}, base[int(r["seed"])])
            for r in mine
            if int(r["seed"]) in base
        ]
        curve = _relative_curve(pairs, "policy")
        if curve:
            curves.plot([(h + 1) / 24 for h in range(len(curve))], curve, label=label)
        series = [r.get("accuracy_by_day") or [] for r in mine]
        daily = [
            [v for s in series if d < len(s) and isinstance(v := s[d], (int, float))]
            for d in range(max((len(s) for s in series), default=0))
        ]
        points = [(d + 1, statistics.fmean(v)) for d, v in enumerate(daily) if v]
        if points:
            accuracy.plot(*zip(*points, strict=True), marker=".", label=label)
    own = [(b, b) for b in base.values()]
    for key in ("uniform", "marginal_oracle"):
        curve = _relative_curve(own, key)
        if curve:
            days = [(h + 1) / 24 for h in range(len(curve))]
            curves.plot(days, curve, "--", linewidth=1, label=SHORT[key])
    curves.axhline(1.0, color="grey", linestyle=":")
    curves.set_xlabel("simulated days")
    curves.set_ylabel("cumulative clicks/$ ÷ Thompson alone's")
    curves.set_title("Over time (mean over seeds)")
    curves.legend(fontsize=7)
    accuracy.axhline(0.9, color="grey", linestyle=":", label="the claim's 90%")
    accuracy.set_xlabel("simulated day")
    accuracy.set_ylabel("headline accuracy")
    accuracy.set_title("Prediction accuracy by day (loop 6, mean over seeds)")
    accuracy.legend(fontsize=7)
    for axis in (bars, curves, accuracy):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def run(quick: bool = False) -> dict[str, Any]:
    """For ``benchmarks/run.py``: quick is the churn scenario's quick mode; the full run is the
    whole design on the three scenarios, two workers (resumable: finished shards are kept)."""
    if quick:
        return {"churn": execute("churn", QUICK_SEEDS, quick=True, workers=2)}
    return {s: execute(s, FULL_SEEDS, workers=2) for s in ("churn", "null", "strong")}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", choices=SCENARIO_NAMES, default="churn")
    parser.add_argument("--seeds", help="e.g. 1-5 or 1,3 (default 1-5; quick: 1-2)")
    parser.add_argument("--workers", type=int, default=1, help="processes running shards")
    parser.add_argument(
        "--quick", action="store_true", help="the scenario's quick mode, 2 seeds, 2 sets"
    )
    parser.add_argument(
        "--sets",
        help="comma-separated set slugs (default: the scenario's design): "
        + "; ".join(f"{name}: {','.join(s.slug for s in sets)}" for name, sets in DESIGN.items())
        + "; only when named (evaluation-only upper bounds, churn, null, strong): "
        + ",".join(s.slug for s in OPTIONAL["churn"]),
    )
    parser.add_argument("--days", type=int, help="override the scenario's length (own folder)")
    parser.add_argument("--stale-hours", type=float, default=DEFAULT_STALE_HOURS)
    parser.add_argument("--out", type=Path, default=OUT, help="root folder of the outputs")
    parser.add_argument(
        "--tables-only", action="store_true", help="rebuild tables and plots from the shards"
    )
    args = parser.parse_args(argv)
    if args.tables_only:
        folder = scenario_folder(args.scenario, args.quick, args.days, args.out)
        figures = write_outputs(args.scenario, folder, args.quick)
        if (args.quick, args.days, args.out) == (False, None, OUT):
            figures["published"] = publish_tables(args.out)
    else:
        try:
            seeds = parse_seeds(args.seeds or ("1-2" if args.quick else "1-5"))
            sets_for(args.scenario, args.sets, args.quick)
        except ValueError as error:
            parser.error(str(error))
        figures = execute(
            args.scenario,
            seeds,
            quick=args.quick,
            wanted_sets=args.sets,
            workers=args.workers,
            days=args.days,
            root=args.out,
            stale_hours=args.stale_hours,
        )
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
