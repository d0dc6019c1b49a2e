"""What people read and look at: the simulation table and the demo's plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from adflywheel.core.settings import Settings
from adflywheel.sim.harness import SimulationResult, SimulationSpec, simulate

# The demo runs the whole service: every loop on, through the hourly cycle.
DEMO_POLICY = "loops=all"


def render_summary(console: Console, summaries: Sequence[dict[str, Any]]) -> None:
    table = Table(title="Simulated market (synthetic data): clicks per dollar by policy")
    for column in ("policy", "seed", "days", "clicks", "spend", "clicks/$", "vs uniform", "regret"):
        table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(
            s["policy"],
            str(s["seed"]),
            str(s["days"]),
            f"{s['clicks']:,}",
            f"${s['spend_minor'] / 100:,.2f}",
            f"{s['clicks_per_dollar']:.3f}",
            f"{s['lift_vs_uniform']:+.1%}" if s["lift_vs_uniform"] is not None else "-",
            f"{s['regret_vs_oracle']:.1%}" if s["regret_vs_oracle"] is not None else "-",
        )
        table.add_row(
            "uniform (reference)",
            "",
            "",
            f"{s['uniform_clicks']:,}",
            f"${s['uniform_spend_minor'] / 100:,.2f}",
            f"{s['uniform_clicks_per_dollar']:.3f}",
            "",
            "",
        )
        table.add_row(
            "oracle (reference)",
            "",
            "",
            f"{s['oracle_clicks']:,}",
            f"${s['oracle_spend_minor'] / 100:,.2f}",
            f"{s['oracle_clicks_per_dollar']:.3f}",
            "",
            "",
        )
    console.print(table)


def render_loops(console: Console, result: SimulationResult) -> None:
    """What each step of the hourly cycle did over the run: runs, failures, time."""
    table = Table(title="The hourly cycle, step by step (all accounts, all hours)")
    for column in ("step", "loop", "ok", "failed", "off", "seconds"):
        table.add_column(column, justify="right")
    for name, stat in result.trace.steps.items():
        table.add_row(
            name,
            str(stat["loop"] or "-"),
            str(stat["ok"]),
            str(stat["failed"]),
            str(stat["off"]),
            f"{stat['seconds']:.1f}",
        )
    console.print(table)
    outcomes = sorted(result.trace.campaign_outcomes.items(), key=lambda kv: -kv[1])
    console.print(
        "campaign-hours by outcome (docs/safety.md): "
        + (", ".join(f"{k} {v}" for k, v in outcomes) or "none")
    )
    learned = result.summary()
    figures = {
        key: learned.get(key)
        for key in (
            "accuracy",
            "calibration",
            "normalized_entropy",
            "retrains",
            "promotions",
            "false_promotions",
            "hours_to_double_median",
        )
        if key in learned
    }
    console.print("learning (last simulated day): " + json.dumps(figures))


def plot_cumulative(result: SimulationResult, path: Path) -> Path:
    """Cumulative clicks per dollar, hour by hour, for the policy and both references."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=110)
    for label, run in (
        (f"{result.spec.policy} (through the service)", result.policy),
        ("uniform split", result.uniform),
        ("oracle (knows the truth)", result.oracle),
    ):
        series = run.cumulative_clicks_per_dollar()
        axes.plot([h / 24 for h in range(1, len(series) + 1)], series, label=label)
    axes.set_xlabel("simulated days")
    axes.set_ylabel("cumulative clicks per dollar")
    axes.set_title(f"Simulated ad market, seed {result.spec.seed} (synthetic data)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


def run_demo(
    settings: Settings, *, days: int, seed: int, console: Console, progress_console: Console
) -> dict[str, Any]:
    policy = DEMO_POLICY
    spec = SimulationSpec(days=days, seed=seed, policy=policy, accounts=4)
    console.print(
        f"[bold]adflywheel demo[/bold]: {spec.accounts} simulated accounts, "
        f"{spec.accounts * spec.campaigns_per_account} campaigns, "
        f"{spec.accounts * spec.campaigns_per_account * spec.variants_per_campaign} "
        "video variants, "
        f"{days} days hour by hour, policy [bold]{policy}[/bold] (synthetic data)."
    )
    console.print(
        "The simulated accounts run on [bold]autopilot[/bold], set explicitly, with their "
        "starting daily total as the account ceiling and the default edit rules (a real account "
        "starts in recommend mode: docs/safety.md). The market models Meta's learning phase."
    )
    out_dir = settings.data_dir / "demo"
    hours = days * 24 * 3
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} simulated hours"),
        TimeRemainingColumn(),
        console=progress_console,
        transient=True,
    ) as progress:
        task = progress.add_task("running the flywheel", total=hours)
        result = simulate(spec, on_hour=lambda: progress.advance(task), workdir=out_dir)
    summary = result.summary()
    render_summary(console, [summary])
    render_loops(console, result)
    try:
        plot: Path | str = plot_cumulative(result, out_dir / "cumulative_clicks_per_dollar.png")
    except ModuleNotFoundError as error:  # matplotlib is the [plots] extra
        if (error.name or "").split(".")[0] != "matplotlib":
            raise
        plot = "not drawn: matplotlib is not installed (install adflywheel[plots])"
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    console.print(f"cycle errors: {len(summary['cycle_errors'])}")
    console.print(f"plot: {escape(str(plot))}")
    console.print(
        f"report: {out_dir / 'summary.json'}; the run's database: {out_dir / 'simulation.db'}"
    )
    return summary
