"""``adflywheel accounts``: accounts and their API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from adflywheel.cli.common import checked_engine, err

accounts_app = typer.Typer(help="Accounts and API keys.", no_args_is_help=True)


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
    from adflywheel.core.clock import SystemClock
    from adflywheel.store.accounts import AccountExistsError, create_account, issue_key
    from adflywheel.store.engine import make_session_factory, transaction

    engine = checked_engine(ctx)
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
