"""Running the service: ``serve`` the API, ``import-csv`` an export, run one ``cycle``."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from adflywheel.cli.common import checked_engine, err, settings_of

if TYPE_CHECKING:
    from adflywheel.core.domain import DailyActual, HourlyActual

app = typer.Typer()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Start the service's clock at this instant (ISO 8601 with an offset), then let "
            "it run: to browse a replay such as the demo's simulated days as if they were "
            "recent. Default: the wall clock.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="uvicorn worker processes (default: serve_workers, 1). With more than one, "
            "the hourly scheduler runs in one of them only; sizing: docs/serving.md.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API and the console (refuses to start on a schema it does not know)."""
    import uvicorn

    from adflywheel.api.access_log import log_config
    from adflywheel.api.app import create_app, worker_environment
    from adflywheel.api.multiworker import run_workers
    from adflywheel.core.clock import ShiftedClock, SystemClock
    from adflywheel.store.engine import SchemaError

    settings = settings_of(ctx)
    clock = None
    if as_of is not None:
        try:
            start = datetime.fromisoformat(as_of.replace("Z", "+00:00"))
        except ValueError as error:
            err.print(f"[red]error:[/red] --as-of {as_of!r} is not an ISO 8601 time")
            raise typer.Exit(2) from error
        if start.tzinfo is None:
            err.print("[red]error:[/red] --as-of needs a UTC offset, e.g. 2025-01-13T00:05Z")
            raise typer.Exit(2)
        if settings.scheduler_enabled:  # its hours would be the wall clock's, not the replay's
            err.print(
                "[red]error:[/red] --as-of needs the scheduler off "
                "(ADFLYWHEEL_SCHEDULER_ENABLED=false)"
            )
            raise typer.Exit(2)
        clock = ShiftedClock(start)
    try:
        # Checked here too with several workers: a wrong schema refuses in the parent, once.
        application = create_app(settings, clock=clock, scheduler=settings.scheduler_enabled)
    except SchemaError as error:
        err.print(f"[red]refusing to start:[/red] {error}")
        raise typer.Exit(2) from error
    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": port or settings.port,
        # The access log without query strings (docs/security.md); JSON lines when configured.
        "log_config": log_config(settings.log_format),
        "timeout_keep_alive": settings.keep_alive_s,
    }
    count = workers or settings.serve_workers
    if count == 1:
        uvicorn.run(application, **options)
        return
    # Several processes: each builds its app from the import string, with these settings and
    # clock (api/app.py worker_app); the hourly scheduler runs in one of them only.
    del application
    offset = None if clock is None else (start - SystemClock().now()).total_seconds()
    os.environ.update(worker_environment(settings, offset))
    run_workers("adflywheel.api.app:worker_app", count, **options)


@app.command("import-csv")
def import_csv(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="The CSV file Ads Manager exported."),
    ],
    account: Annotated[
        str, typer.Option(help="Account name: an existing account, or a new one with --create.")
    ],
    create: Annotated[
        bool,
        typer.Option(
            "--create",
            help="Create the account if it does not exist, with the deployment's new-account "
            "guardrails; its API key is printed once (api_key in the JSON).",
        ),
    ] = False,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="The ad account's time zone (IANA); default: the account's own (UTC for a new "
            "one). Disagreeing with an existing account's zone is an error without --set-timezone."
        ),
    ] = None,
    set_timezone: Annotated[
        bool,
        typer.Option(
            "--set-timezone", help="Change the existing account's time zone to --timezone."
        ),
    ] = False,
) -> None:
    """Import a Meta Ads Manager CSV export: catalogue and hourly actuals, all or nothing."""
    from adflywheel.cli.feedback import progress_bar
    from adflywheel.core.clock import SystemClock
    from adflywheel.platforms.csv import CsvImportError, CsvPlatform
    from adflywheel.services.promoter.settings import new_account_settings, store_settings
    from adflywheel.store.accounts import (
        AccountExistsError,
        NewKey,
        account_by_name,
        create_account,
        issue_key,
    )
    from adflywheel.store.actuals import BatchRejectedError, upsert_actuals, upsert_daily
    from adflywheel.store.catalog import sync_catalog
    from adflywheel.store.engine import make_session_factory, transaction
    from adflywheel.store.queries import campaign_structures

    engine = checked_engine(ctx)
    factory = make_session_factory(engine)
    now = SystemClock().now()
    with factory() as session:
        existing = account_by_name(session, account)
        known_zone = existing.timezone if existing is not None else None
    if known_zone is None and not create:
        err.print(
            f"[red]nothing imported:[/red] no account named {account!r}; pass --create to "
            "create it (its API key is printed once), or check the name"
        )
        raise typer.Exit(2)
    if known_zone is not None and timezone is not None and timezone != known_zone:
        if not set_timezone:
            err.print(
                f"[red]nothing imported:[/red] --timezone {timezone} disagrees with account "
                f"{account!r}, whose time zone is {known_zone}; leave --timezone out, or pass "
                f"--set-timezone to change the account's zone to {timezone}"
            )
            raise typer.Exit(2)
    elif set_timezone and timezone is None:
        err.print("[red]nothing imported:[/red] --set-timezone needs --timezone")
        raise typer.Exit(2)
    zone = timezone or known_zone or "UTC"
    new_key: NewKey | None = None
    zone_changed_from: str | None = None
    try:
        with progress_bar(err, "rows imported") as progress:
            task = progress.add_task(f"reading {path.name}", total=None)
            platform = CsvPlatform.from_path(path, account_external_id=account, timezone=zone)
            hourly = platform.fetch_insights(
                datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
            )
            daily = platform.fetch_daily(date.min, date.max)
            # All or nothing: each kind of row is one upsert, so the bar moves a kind at a time.
            progress.update(task, description="importing", total=len(hourly) + len(daily))
            with transaction(factory) as session:
                row = account_by_name(session, account)
                if row is None:
                    if not create:  # deleted meanwhile
                        raise ValueError(f"no account named {account!r}")
                    info = platform.account()
                    row = create_account(
                        session, account, now, platform="csv", currency=info.currency, timezone=zone
                    )
                    initial = new_account_settings(settings_of(ctx))
                    store_settings(
                        session, row.id, initial, now=now, actor="cli:import-csv --create"
                    )
                    new_key = issue_key(session, row, now)
                elif row.timezone != zone:
                    if not set_timezone:  # changed meanwhile
                        raise ValueError(f"account {account!r}'s time zone is {row.timezone}")
                    zone_changed_from, row.timezone = row.timezone, zone
                sync_catalog(
                    session,
                    row.id,
                    platform.list_campaigns(),
                    platform.list_ad_sets(),
                    platform.list_ads(),
                    now,
                )
                result = upsert_actuals(session, row.id, hourly, source="csv", now=now)
                progress.advance(task, len(hourly))
                daily_result = upsert_daily(session, row.id, daily, source="csv", now=now)
                progress.advance(task, len(daily))
                currency = row.currency
                structures = campaign_structures(session, row.id)
    except (CsvImportError, BatchRejectedError, AccountExistsError, ValueError) as error:
        err.print(f"[red]nothing imported:[/red] {error}")
        raise typer.Exit(2) from error
    known = bool(platform.budget_levels())
    output: dict[str, object] = {
        "account": account,
        "hourly": result.as_dict(),
        "daily": daily_result.as_dict(),
        "timezone": zone,
        "created": new_key is not None,
        # Each active campaign's budget structure, as the budget columns of the file show it.
        "campaigns": [
            {"campaign_id": c, "structure": s.value if known else "unknown"}
            for c, s in structures.items()
        ],
    }
    if not known:
        note = (
            "the export has no budget columns ('Campaign budget' and 'Campaign budget type', or "
            "'Ad set budget' and 'Ad set budget type'), so where each campaign's money is set "
            "is unknown; with no ad set budget stored, the cycle moves none (it reports them "
            "as campaign_budget). Export again with those columns to tell."
        )
        err.print(f"[yellow]note:[/yellow] {note}")
        output["structure_note"] = note
    if new_key is not None:
        err.print(
            f"account {new_key.account_name!r} created (id {new_key.account_id}); its API key "
            "is api_key in the JSON below (shown this once only)"
        )
        output["api_key"] = new_key.key
    if zone_changed_from is not None:
        err.print(f"account {account!r}: time zone changed from {zone_changed_from} to {zone}")
        output["timezone_changed_from"] = zone_changed_from
    _import_summary(path, account, currency, zone, (hourly, daily), output)
    typer.echo(json.dumps(output))


def _import_summary(
    path: Path,
    account: str,
    currency: str,
    zone: str,
    rows: tuple[list[HourlyActual], list[DailyActual]],
    output: dict[str, Any],
) -> None:
    """What was imported, for a person (standard error): rows, spend in the account's currency,
    the hours and days covered on its clock. The JSON on stdout keeps minor units and UTC."""
    from adflywheel.cli.feedback import local_time, money

    hourly, daily = rows

    def counts(kind: str) -> str:
        c = output[kind]
        return (
            f"{c['received']:,} {kind} rows ({c['inserted']:,} new, {c['updated']:,} changed, "
            f"{c['unchanged']:,} the same)"
        )

    err.print(f"[bold]{path.name}[/bold] -> account {account!r} ({currency}, {zone})")
    err.print(f"  {counts('hourly')}; {counts('daily')}")
    if hourly:
        first, last = min(h.hour_start for h in hourly), max(h.hour_start for h in hourly)
        err.print(
            f"  hours {local_time(first, zone)} to {local_time(last, zone)}: spend "
            f"{money(sum(h.spend_minor for h in hourly), currency)}, "
            f"{len({h.ad_id for h in hourly}):,} ads"
        )
    if daily:
        first_day, last_day = min(d.date for d in daily), max(d.date for d in daily)
        err.print(
            f"  days {first_day} to {last_day}: spend "
            f"{money(sum(d.spend_minor for d in daily), currency)}, "
            f"{len({d.ad_id for d in daily}):,} ads"
        )


@app.command()
def cycle(
    ctx: typer.Context,
    account: Annotated[
        str | None, typer.Option(help="Account name; default: every account.")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Run the cycle as the hourly scheduler would have at this instant (ISO 8601 "
            "with an offset, e.g. 2026-11-25T10:00Z): the hours that ended by then are final "
            "and fetched, the last being the one just closed (10:00 or 10:30: 09:00-10:00); "
            "the cycle's hour (hour_start) is the one it falls in (10:00). Default: now.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Re-run a completed hour.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Record decisions, apply nothing.")] = False,
) -> None:
    """Run the self-learning cycle once: one JSON report per account on stdout."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.cycle.context import CycleOptions
    from adflywheel.cycle.scheduler import CycleRunner, redis_client
    from adflywheel.platforms.registry import connected_platforms, no_platform
    from adflywheel.services.alerts import AlertSink
    from adflywheel.store.accounts import account_by_name
    from adflywheel.store.engine import make_session_factory

    settings = settings_of(ctx)
    engine = checked_engine(ctx)
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
        platforms=connected_platforms(settings, factory, fallback=no_platform),
        redis=redis_client(settings),
        alert=AlertSink.from_settings(factory, SystemClock(), settings),
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
