"""``simulate`` and ``demo``: the service on the simulated market (synthetic data)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adflywheel.cli.common import err, out, settings_of
from adflywheel.cli.feedback import (
    collected_warnings,
    progress_bar,
    render_flags,
    simulation_retrains,
)

app = typer.Typer()


@app.command()
def simulate(
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 2,
    seed: Annotated[int, typer.Option(help="Market seed.")] = 7,
    policy: Annotated[
        str,
        typer.Option(help="A budget policy (uniform, thompson, …) or a loop set: loops=1,2,3|all."),
    ] = "uniform",
    accounts: Annotated[int, typer.Option(min=1, help="Simulated ad accounts.")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Last stdout line: JSON.")] = False,
    drift_day: Annotated[
        int | None, typer.Option(min=0, help="Inject a drift: the top gene effects flip that day.")
    ] = None,
    guardrails: Annotated[
        str,
        typer.Option(
            help="The simulated accounts' guardrails: safe (the defaults, on autopilot with the "
            "account ceiling at the starting total) or legacy (no ceiling, no edit rules)."
        ),
    ] = "safe",
) -> None:
    """Run the service hour by hour on the simulated market (synthetic data) against the
    uniform and oracle references."""
    from adflywheel.sim.harness import SimulationSpec, resolve_policy
    from adflywheel.sim.harness import simulate as run

    try:
        resolve_policy(policy, seed)
        if guardrails not in ("safe", "legacy"):
            raise ValueError(f"--guardrails must be safe or legacy, not {guardrails!r}")
    except ValueError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    spec = SimulationSpec(
        days=days,
        seed=seed,
        policy=policy,
        accounts=accounts,
        drift_day=drift_day,
        guardrails=guardrails,
    )
    hours = days * 24 * 3  # the policy's run, then the uniform and oracle references
    with (
        tempfile.TemporaryDirectory(prefix="adflywheel-sim-") as folder,
        collected_warnings() as warnings,
        progress_bar(err, "simulated hours") as progress,
    ):
        task = progress.add_task(f"simulating {policy}", total=hours)
        result = run(spec, on_hour=lambda: progress.advance(task), workdir=Path(folder))
        retrains = simulation_retrains(Path(folder) / "simulation.db")
    summary = result.summary()
    # With --json, stdout carries the JSON alone: the tables go to standard error.
    console = err if as_json else out()
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        from adflywheel.sim.report import render_summary

        render_summary(console, [summary])
    render_flags(console, retrains, warnings)


@app.command()
def demo(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 7,
    seed: Annotated[int, typer.Option(help="Market seed (the same seed, the same market).")] = 7,
) -> None:
    """Run the best available policy on the simulated market and show what it did."""
    from adflywheel.sim.report import run_demo

    settings, console = settings_of(ctx), out()
    with collected_warnings() as warnings:
        run_demo(settings, days=days, seed=seed, console=console, progress_console=err)
    retrains = simulation_retrains(settings.data_dir / "demo" / "simulation.db")
    render_flags(console, retrains, warnings)
    _print_console_access(console, settings.data_dir / "demo")


def _print_console_access(console: Console, folder: Path) -> None:
    """The last lines: a console user and an API key (shown once), then the one command that
    serves the console on this run's data."""
    from adflywheel.cli.demo_console import grant_demo_access

    access = grant_demo_access(folder)
    lines = (
        "",
        "See these days in the console (synthetic data): run the command below, open "
        f"{access.url} and sign in as {access.email} with password {access.password} "
        "(shown this once).",
        f"API key of account {access.account_name!r} (shown this once): {access.api_key}",
        access.command,
    )
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
