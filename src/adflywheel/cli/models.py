"""``adflywheel models``: list an account's model versions, promote one, roll the champion back,
or train a challenger through the gate (loop 5's registry)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adflywheel.cli.common import account_id_of, checked_engine, err, settings_of

models_app = typer.Typer(help="CTR models and their registry (loop 5).", no_args_is_help=True)

Account = Annotated[str, typer.Option("--account", help="Account name.")]
MODEL_NAME = "ctr_xgb"  # registry_service.MODEL_NAME, spelled here to keep `--help` light


@models_app.command("list")
def list_versions(
    ctx: typer.Context,
    account: Account,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Newest versions to list.")] = 50,
) -> None:
    """The account's versions (newest first), with the champion marked and holdout scores;
    the table shows times on the account's clock, the JSON in UTC."""
    from adflywheel.cli.feedback import local_time
    from adflywheel.services.compound.training import list_models
    from adflywheel.store.engine import make_session_factory
    from adflywheel.store.models import Account

    account_id = account_id_of(ctx, account)
    with make_session_factory(checked_engine(ctx))() as session:
        listing = list_models(session, account_id, limit=limit)
        row = session.get(Account, account_id)
        zone = row.timezone if row is not None else "UTC"
    if as_json:
        typer.echo(json.dumps(listing, sort_keys=True))
        return
    champions = {a["version_id"] for a in listing["aliases"] if a["alias"] == "champion"}
    table = Table(title=f"models of {account}")
    for column in ("id", "name", "version", "champion", "created", "holdout NE", "calibration"):
        table.add_column(column)
    for v in listing["versions"]:
        holdout = v["metrics"].get("holdout") or {}
        table.add_row(
            str(v["version_id"]),
            v["name"],
            str(v["version"]),
            "yes" if v["version_id"] in champions else "",
            local_time(v["created_at"], zone),
            str(holdout.get("normalised_entropy", "")),
            str(holdout.get("calibration", "")),
        )
    Console().print(table)


@models_app.command("promote")
def promote_version(
    ctx: typer.Context,
    account: Account,
    version_id: Annotated[int, typer.Argument(help="The version id (see `models list`).")],
    reason: Annotated[str, typer.Option(help="Why, for the record.")],
    actor: Annotated[str, typer.Option(help="Who, for the record.")] = "cli",
) -> None:
    """Make a version the champion without the gate (recorded as a manual promotion)."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.compound.training import RegistryError, event_out, promote
    from adflywheel.store.engine import make_session_factory, transaction

    account_id = account_id_of(ctx, account)
    try:
        with transaction(make_session_factory(checked_engine(ctx))) as session:
            event = event_out(
                promote(
                    session,
                    version_id,
                    actor,
                    reason,
                    account_id=account_id,
                    now=SystemClock().now(),
                )
            )
    except RegistryError as error:
        err.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from error
    typer.echo(json.dumps(event, sort_keys=True))


@models_app.command("rollback")
def rollback_champion(
    ctx: typer.Context,
    account: Account,
    reason: Annotated[str, typer.Option(help="Why, for the record.")],
    name: Annotated[str, typer.Option(help="Model name.")] = MODEL_NAME,
    actor: Annotated[str, typer.Option(help="Who, for the record.")] = "cli",
) -> None:
    """Point the champion back at the version it replaced."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.compound.training import RegistryError, event_out, rollback
    from adflywheel.store.engine import make_session_factory, transaction

    account_id = account_id_of(ctx, account)
    try:
        with transaction(make_session_factory(checked_engine(ctx))) as session:
            event = event_out(
                rollback(session, account_id, name, actor, reason, now=SystemClock().now())
            )
    except RegistryError as error:
        err.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(2) from error
    typer.echo(json.dumps(event, sort_keys=True))


@models_app.command("train")
def train_challenger(
    ctx: typer.Context,
    account: Account,
    reason: Annotated[str, typer.Option(help="Why, for the record.")] = "requested from the CLI",
    seed: Annotated[
        int, typer.Option(min=0, help="Training seed (the same data and seed, the same model).")
    ] = 0,
) -> None:
    """Train a challenger on the account's data up to now and run the promotion gate."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.services.compound.training import TrainOptions, train_challenger_and_gate
    from adflywheel.store.engine import make_session_factory

    account_id = account_id_of(ctx, account)
    factory = make_session_factory(checked_engine(ctx))

    decision = train_challenger_and_gate(
        factory,
        settings_of(ctx),
        account_id,
        SystemClock().now(),
        reason,
        options=TrainOptions(seed=seed),
        actor="cli",
    )
    typer.echo(json.dumps(decision.as_dict(), sort_keys=True))
    if decision.status == "insufficient_data":
        raise typer.Exit(1)
