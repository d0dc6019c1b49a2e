"""``adflywheel meta``: connect an account to a Meta ad account, and fetch actuals (loop 6).

The token is read from ``ADFLYWHEEL_META_ACCESS_TOKEN`` or from the variable named by
``--token-env``; it is never written to the database (docs/meta.md).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from sqlalchemy import select

from adflywheel.cli.common import checked_engine, fail, settings_of

meta_app = typer.Typer(
    help="Meta Marketing API connection and fetch (loop 6).", no_args_is_help=True
)


@meta_app.command("connect")
def connect(
    ctx: typer.Context,
    account: Annotated[str, typer.Option("--account", help="Account name.")],
    ad_account_id: Annotated[str, typer.Argument(help="Meta ad account id, act_<digits>.")],
    token_env: Annotated[
        str | None,
        typer.Option(help="Environment variable holding this account's token (optional)."),
    ] = None,
) -> None:
    """Read the ad account (proves token and id) and bind the account to it."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.platforms.base import PlatformError
    from adflywheel.platforms.meta import MetaPlatform
    from adflywheel.platforms.meta.connection import connect_meta_account, meta_client
    from adflywheel.store.accounts import account_by_name
    from adflywheel.store.engine import make_session_factory

    factory = make_session_factory(checked_engine(ctx))
    with factory() as session:
        row = account_by_name(session, account)
    if row is None:
        raise fail(f"no account named {account!r}")
    try:
        platform = MetaPlatform(meta_client(settings_of(ctx), token_env), ad_account_id)
        info = connect_meta_account(factory, row.id, platform, SystemClock(), token_env=token_env)
    except (PlatformError, ValueError) as error:
        raise fail(str(error)) from error
    typer.echo(json.dumps({"account": account, **info}))


@meta_app.command("fetch")
def fetch(
    ctx: typer.Context,
    account: Annotated[
        list[str] | None, typer.Option("--account", help="Account name (repeatable; default all).")
    ] = None,
) -> None:
    """Fetch today's and yesterday's actuals for Meta-connected accounts; one line of JSON each.
    Exit status 1 when any account failed (the others are still fetched); each failure is
    alerted (``fetch_failure``, logged, stored and posted to the configured webhook)."""
    from adflywheel.core.clock import SystemClock
    from adflywheel.platforms.registry import connected_platforms
    from adflywheel.services.alerts import AlertSink
    from adflywheel.services.monitor.fetch import fetch_accounts
    from adflywheel.store.engine import make_session_factory
    from adflywheel.store.fetching import MetaConnection
    from adflywheel.store.models import Account

    factory = make_session_factory(checked_engine(ctx))
    with factory() as session:
        query = select(Account.id, Account.name).join(
            MetaConnection, MetaConnection.account_id == Account.id
        )
        if account:
            query = query.where(Account.name.in_(account))
        ids: dict[int, str] = {i: n for i, n in session.execute(query.order_by(Account.id))}
    missing = sorted(set(account or []) - set(ids.values()))
    if missing:
        raise fail(f"not connected to Meta (or unknown): {', '.join(missing)}")
    clock, settings = SystemClock(), settings_of(ctx)
    results = fetch_accounts(
        factory,
        connected_platforms(settings, factory),
        list(ids),
        clock.now(),
        clock,
        alerts=AlertSink.from_settings(factory, clock, settings),
    )
    for account_id, result in results.items():
        typer.echo(json.dumps({"account": ids[account_id], **result}, default=str))
    if any(r["status"] != "ok" for r in results.values()):
        raise typer.Exit(1)
