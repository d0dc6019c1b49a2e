"""The command line: serve, migrate, create accounts, import CSV exports, simulate, demo."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine

from adflywheel.cli_meta import meta_app
from adflywheel.cli_models import models_app
from adflywheel.settings import Settings, load_settings

app = typer.Typer(help="adflywheel: the self-learning ad flywheel.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
accounts_app = typer.Typer(help="Accounts and API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(models_app, name="models")
app.add_typer(meta_app, name="meta")

err = Console(stderr=True)


def _out() -> Console:
    """Standard output, wide enough for the report tables when it is not a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def _settings(ctx: typer.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file.", exists=True)
    ] = None,
) -> None:
    ctx.obj = load_settings(config)


def _checked_engine(ctx: typer.Context) -> Engine:
    """The configured database, or exit 2 saying why its schema cannot be used."""
    from adflywheel.store.engine import SchemaError, check_schema, make_engine

    engine = make_engine(_settings(ctx).resolved_database_url)
    try:
        check_schema(engine)
    except SchemaError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    return engine


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the schema migrations to the configured database."""
    from adflywheel.store.engine import current_revision, make_engine, upgrade

    engine = make_engine(_settings(ctx).resolved_database_url)
    upgrade(engine)
    err.print(f"database at schema revision {current_revision(engine)}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's schema revision."""
    from adflywheel.store.engine import current_revision, make_engine

    typer.echo(current_revision(make_engine(_settings(ctx).resolved_database_url)) or "none")


@accounts_app.command("create")
def accounts_create(
    ctx: typer.Context,
    name: str,
    currency: str = "USD",
    timezone: str = "UTC",
    category: str | None = None,
    admin: Annotated[bool, typer.Option(help="The key may act for every account.")] = False,
) -> None:
    """Create an account and print its API key (shown this once only)."""
    from adflywheel.clock import SystemClock
    from adflywheel.store.accounts import AccountExistsError, create_account, issue_key
    from adflywheel.store.engine import make_session_factory, transaction

    engine = _checked_engine(ctx)
    try:
        now = SystemClock().now()
        with transaction(make_session_factory(engine)) as session:
            account = create_account(
                session, name, now, currency=currency, timezone=timezone, category=category
            )
            key = issue_key(session, account, now, admin=admin)
    except (AccountExistsError, ValueError) as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    err.print(f"account {key.account_name!r} created (id {key.account_id}); its API key:")
    typer.echo(key.key)


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the HTTP API (refuses to start on a schema it does not know)."""
    import uvicorn

    from adflywheel.api.app import create_app
    from adflywheel.store.engine import SchemaError

    settings = _settings(ctx)
    try:
        application = create_app(settings, scheduler=settings.scheduler_enabled)
    except SchemaError as error:
        err.print(f"[red]refusing to start:[/red] {error}")
        raise typer.Exit(2) from error
    uvicorn.run(application, host=host or settings.host, port=port or settings.port)


@app.command("import-csv")
def import_csv(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    account: Annotated[str, typer.Option(help="Account name (created if missing).")],
    timezone: Annotated[str, typer.Option(help="The ad account's time zone (IANA).")] = "UTC",
) -> None:
    """Import a Meta Ads Manager CSV export: catalogue and hourly actuals, all or nothing."""
    from adflywheel.clock import SystemClock
    from adflywheel.platforms.csv_import import CsvImportError, CsvPlatform
    from adflywheel.store.accounts import account_by_name, create_account
    from adflywheel.store.actuals import BatchRejectedError, upsert_actuals, upsert_daily
    from adflywheel.store.catalog import sync_catalog
    from adflywheel.store.engine import make_session_factory, transaction

    engine = _checked_engine(ctx)
    now = SystemClock().now()
    try:
        platform = CsvPlatform.from_path(path, account_external_id=account, timezone=timezone)
        hourly = platform.fetch_insights(
            datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
        )
        daily = platform.fetch_daily(date.min, date.max)
        with transaction(make_session_factory(engine)) as session:
            row = account_by_name(session, account)
            if row is None:
                info = platform.account()
                row = create_account(
                    session, account, now, platform="csv", currency=info.currency, timezone=timezone
                )
            sync_catalog(
                session,
                row.id,
                platform.list_campaigns(),
                platform.list_ad_sets(),
                platform.list_ads(),
                now,
            )
            result = upsert_actuals(session, row.id, hourly, source="csv", now=now)
            daily_result = upsert_daily(session, row.id, daily, source="csv", now=now)
    except (CsvImportError, BatchRejectedError, ValueError) as error:
        err.print(f"[red]nothing imported:[/red] {error}")
        raise typer.Exit(2) from error
    typer.echo(
        json.dumps(
            {
                "account": account,
                "hourly": result.as_dict(),
                "daily": daily_result.as_dict(),
            }
        )
    )


@app.command()
def cycle(
    ctx: typer.Context,
    account: Annotated[
        str | None, typer.Option(help="Account name; default: every account.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Run as of this hour, ISO 8601 UTC; default: now."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Re-run a completed hour.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Record decisions, apply nothing.")] = False,
) -> None:
    """Run the self-learning cycle once: one JSON report per account on stdout."""
    from adflywheel.alerts import AlertSink
    from adflywheel.clock import SystemClock
    from adflywheel.cycle import CycleOptions
    from adflywheel.cycle_service import CycleRunner, redis_client
    from adflywheel.fetch_service import meta_platforms
    from adflywheel.platforms.resolver import no_platform
    from adflywheel.store.accounts import account_by_name
    from adflywheel.store.engine import make_session_factory

    settings = _settings(ctx)
    engine = _checked_engine(ctx)
    when: datetime | None = None
    if as_of is not None:
        try:
            when = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError as error:
            err.print(f"[red]error:[/red] --as-of {as_of!r} is not an ISO 8601 time")
            raise typer.Exit(2) from error
        if when.tzinfo is None:
            err.print("[red]error:[/red] --as-of needs a UTC offset, e.g. 2026-11-25T14:00Z")
            raise typer.Exit(2)
    factory = make_session_factory(engine)
    runner = CycleRunner(
        settings=settings,
        factory=factory,
        clock=SystemClock(),
        platforms=meta_platforms(settings, factory, fallback=no_platform),
        redis=redis_client(settings),
        alert=AlertSink(factory, SystemClock(), webhook_url=settings.alert_webhook_url),
    )
    if account is None:
        ids = runner.all_accounts()
    else:
        with factory() as session:
            row = account_by_name(session, account)
        if row is None:
            err.print(f"[red]error:[/red] no account named {account!r}")
            raise typer.Exit(2)
        ids = [row.id]
    options = CycleOptions(as_of=when, force=force, dry_run=dry_run)
    reports = runner.run_many(ids, options)
    for report in reports:
        typer.echo(json.dumps(report, sort_keys=True, default=str))
    if any(r.get("status") in ("failed", "busy") for r in reports):
        raise typer.Exit(1)


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
    accounts: Annotated[int, typer.Option(min=1)] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Last stdout line: JSON.")] = False,
    drift_day: Annotated[
        int | None, typer.Option(min=0, help="Inject a drift: the top gene effects flip that day.")
    ] = None,
) -> None:
    """Run the service hour by hour on the simulated market (synthetic data) against the
    uniform and oracle references."""
    from adflywheel.harness import SimulationSpec, resolve_policy
    from adflywheel.harness import simulate as run

    try:
        resolve_policy(policy, seed)
    except ValueError as error:
        err.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from error
    spec = SimulationSpec(
        days=days, seed=seed, policy=policy, accounts=accounts, drift_day=drift_day
    )
    hours = days * 24 * 3
    with _progress_for(hours) as progress:
        task = progress.add_task(f"simulating {policy}", total=hours)
        result = run(spec, on_hour=lambda: progress.advance(task))
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        from adflywheel.report import render_summary

        render_summary(_out(), [summary])


@app.command()
def demo(
    ctx: typer.Context,
    days: Annotated[int, typer.Option(min=1)] = 7,
    seed: Annotated[int, typer.Option()] = 7,
) -> None:
    """Run the best available policy on the simulated market and show what it did."""
    from adflywheel.report import run_demo

    run_demo(_settings(ctx), days=days, seed=seed, console=_out(), progress_console=err)


if __name__ == "__main__":
    app()
