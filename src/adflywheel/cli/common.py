"""What every command group shares: the consoles, the settings, the checked database, errors."""

from __future__ import annotations

import typer
from rich.console import Console
from sqlalchemy import Engine

from adflywheel.core.settings import Settings

err = Console(stderr=True)


def out() -> Console:
    """Standard output, wide enough for the report tables when it is not a terminal."""
    console = Console()
    return console if console.is_terminal else Console(width=120)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings the root command read (``--config`` and the environment)."""
    settings = ctx.find_root().obj
    assert isinstance(settings, Settings)
    return settings


def fail(message: str) -> typer.Exit:
    """Print the reason and give the exit (code 2) to raise."""
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def checked_engine(ctx: typer.Context) -> Engine:
    """The configured database, or exit 2 saying why its schema cannot be used."""
    from adflywheel.store.engine import SchemaError, check_schema, make_engine

    engine = make_engine(settings_of(ctx).resolved_database_url)
    try:
        check_schema(engine)
    except SchemaError as error:
        raise fail(str(error)) from error
    return engine


def account_id_of(ctx: typer.Context, name: str) -> int:
    """The id of the account called ``name``, or exit 2."""
    from adflywheel.store.accounts import account_by_name
    from adflywheel.store.engine import make_session_factory

    with make_session_factory(checked_engine(ctx))() as session:
        row = account_by_name(session, name)
    if row is None:
        raise fail(f"no account named {name!r}")
    return row.id
