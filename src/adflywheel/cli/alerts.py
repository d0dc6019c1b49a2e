"""``adflywheel alerts list`` and ``adflywheel audit list``: what reached a human, and who
changed an account's mode, guardrails or loop switches (issue #18)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from adflywheel.cli.actions import AccountOpt, JsonOpt, echo_lines, factory_of, zone_of
from adflywheel.cli.common import account_id_of, fail, out

alerts_app = typer.Typer(help="The account's alerts.", no_args_is_help=True)
audit_app = typer.Typer(
    help="Who changed an account's mode, guardrails or loops.", no_args_is_help=True
)

Limit = Annotated[int, typer.Option(min=1, max=1000, help="Newest rows to show.")]


@alerts_app.command("list")
def alerts_list(
    ctx: typer.Context,
    account: AccountOpt,
    kind: Annotated[str | None, typer.Option(help="drift, breaker, retrain, ...")] = None,
    limit: Limit = 50,
    as_json: JsonOpt = False,
) -> None:
    """The account's alerts, newest first."""
    from adflywheel.cli.feedback import local_time
    from adflywheel.services.alerts import recent_alerts

    account_id = account_id_of(ctx, account)
    factory = factory_of(ctx)
    with factory() as session:
        rows = recent_alerts(session, account_id, limit=limit, kind=kind)
    if as_json:
        echo_lines(rows)
        return
    zone = zone_of(factory, account_id)
    table = Table(title=f"alerts of {account}")
    for column in ("id", "when", "kind", "message", "delivery"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["id"]), local_time(r["created_at"], zone), r["kind"], r["message"], r["delivery"]
        )
    out().print(table)


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    account: AccountOpt,
    what: Annotated[str | None, typer.Option(help="mode, guardrails or power.")] = None,
    limit: Limit = 50,
    as_json: JsonOpt = False,
) -> None:
    """Who changed the account's settings, from what to what, newest first."""
    import json

    from adflywheel.cli.feedback import local_time
    from adflywheel.services.account_settings import audit_log

    if what is not None and what not in ("mode", "guardrails", "power"):
        raise fail(f"--what is mode, guardrails or power, not {what!r}")
    account_id = account_id_of(ctx, account)
    factory = factory_of(ctx)
    with factory() as session:
        rows = audit_log(session, account_id, what=what, limit=limit)
    if as_json:
        echo_lines(rows)
        return
    zone = zone_of(factory, account_id)
    table = Table(title=f"settings audit of {account}")
    for column in ("id", "when", "who", "what", "old", "new"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["event_id"]),
            local_time(r["at"], zone),
            r["actor"],
            r["what"],
            json.dumps(r["old"], sort_keys=True),
            json.dumps(r["new"], sort_keys=True),
        )
    out().print(table)
