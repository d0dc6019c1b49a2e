"""``simulate`` and ``demo``: the service on the simulated market (synthetic data)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from adflywheel.cli.common import err, out, settings_of

app = typer.Typer()


def _progress_for(total: int) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} simulated hours"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


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
    hours = days * 24 * 3
    with _progress_for(hours) as progress:
        task = progress.add_task(f"simulating {policy}", total=hours)
        result = run(spec, on_hour=lambda: progress.advance(task))
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        from adflywheel.sim.report import render_summary

        render_summary(out(), [summary])


@app.command()
def demo(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1, help="Simulated days.")] = 7,
    seed: Annotated[int, typer.Option(help="Market seed (the same seed, the same market).")] = 7,
) -> None:
    """Run the best available policy on the simulated market and show what it did."""
    from adflywheel.sim.report import run_demo

    run_demo(settings_of(ctx), days=days, seed=seed, console=out(), progress_console=err)
