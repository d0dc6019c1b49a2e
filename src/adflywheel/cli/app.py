"""The command line: the root command and its groups, one module per group."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from adflywheel.cli import (
    accounts,
    alerts,
    budgets,
    db,
    meta,
    models,
    promotions,
    run,
    simulate,
    users,
)
from adflywheel.core.settings import load_settings

app = typer.Typer(help="adflywheel: the self-learning ad flywheel.", no_args_is_help=True)
app.add_typer(db.db_app, name="db")
app.add_typer(accounts.accounts_app, name="accounts")
app.add_typer(models.models_app, name="models")
app.add_typer(meta.meta_app, name="meta")
app.add_typer(users.users_app, name="users")
app.add_typer(budgets.budgets_app, name="budgets")
app.add_typer(promotions.promotions_app, name="promotions")
app.add_typer(alerts.alerts_app, name="alerts")
app.add_typer(alerts.audit_app, name="audit")
for commands in (run.app, simulate.app):
    app.registered_commands.extend(commands.registered_commands)


@app.callback()
def main(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file.", exists=True)
    ] = None,
) -> None:
    ctx.obj = load_settings(config)


if __name__ == "__main__":
    app()
