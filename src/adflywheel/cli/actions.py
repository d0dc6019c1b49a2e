"""What the CLI's action commands share (``budgets``, ``promotions``, ``alerts``, ``audit``):
who is acting, the account's platform, the account's clock for tables, errors as exit 2."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from adflywheel.cli.common import checked_engine, fail, settings_of

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from adflywheel.platforms.base import AdPlatform

AccountOpt = Annotated[str, typer.Option("--account", help="Account name.")]
ActorOpt = Annotated[
    str | None, typer.Option("--actor", help="Who, for the record (default: cli:<your login>).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")]


def actor_of(given: str | None) -> str:
    """``cli:<login>`` unless the caller names someone (an audit names a person, not a tool)."""
    if given:
        return given
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


def factory_of(ctx: typer.Context) -> sessionmaker[Session]:
    from adflywheel.store.engine import make_session_factory

    return make_session_factory(checked_engine(ctx))


def platform_of(
    ctx: typer.Context, factory: sessionmaker[Session], account_id: int
) -> AdPlatform | None:
    """The account's connected platform (as ``adflywheel cycle`` finds it), or None: a write
    is then refused by the service after it checked whose change it is."""
    from adflywheel.platforms.base import PlatformError
    from adflywheel.platforms.registry import connected_platforms, no_platform

    try:
        return connected_platforms(settings_of(ctx), factory, fallback=no_platform)(account_id)
    except PlatformError:
        return None


def zone_of(factory: sessionmaker[Session], account_id: int) -> str:
    from adflywheel.store.models import Account

    with factory() as session:
        row = session.get(Account, account_id)
        return row.timezone if row is not None else "UTC"


def run(action: Callable[[], dict[str, Any]]) -> None:
    """Run one service action: its result as JSON on stdout, a refusal as exit 2 with why."""
    from adflywheel.core.errors import AdflywheelError

    try:
        result = action()
    except AdflywheelError as error:
        raise fail(str(error)) from error
    typer.echo(json.dumps(result, sort_keys=True, default=str))


def echo_lines(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        typer.echo(json.dumps(row, sort_keys=True, default=str))
