"""``adflywheel db``: the database schema (Alembic migrations)."""

from __future__ import annotations

import typer

from adflywheel.cli.common import err, settings_of

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Apply the schema migrations to the configured database."""
    from adflywheel.store.engine import current_revision, make_engine, upgrade

    engine = make_engine(settings_of(ctx).resolved_database_url)
    upgrade(engine)
    err.print(f"database at schema revision {current_revision(engine)}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the database's schema revision."""
    from adflywheel.store.engine import current_revision, make_engine

    typer.echo(current_revision(make_engine(settings_of(ctx).resolved_database_url)) or "none")
